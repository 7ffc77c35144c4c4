import NIOConcurrencyHelpers
import NIOCore

/// exporter-toolkit's `rate_limit` (one token per `interval`, at most `burst` saved
/// up), kept so that a stranger cannot spend the scraper's budget:
/// - before credentials are checked, a request is charged to its source address's
///   own bucket (`rate_limit`'s rate each), so a flood costs no bcrypt and spends only
///   the flooder's tokens;
/// - once its credentials pass, it is charged to its identity's bucket and to the
///   total bucket, which is `rate_limit` as exporter-toolkit means it, counted over
///   authenticated requests: failures never reach it.
///
/// Buckets by key live in a table of at most `maximumKeys`; when it is full, the
/// bucket touched longest ago is forgotten (a forgotten key starts again full, which
/// a new address would anyway).
package final class RateLimiter: Sendable {
    /// Whose bucket a request is charged to.
    package enum Key: Hashable, Sendable {
        case source(String)
        case identity(String)
    }

    private struct Bucket {
        var tokens: Double
        var updated: NIODeadline

        /// Refills for the time since `updated`, then takes a token if one is there.
        mutating func take(now: NIODeadline, interval: Double, burst: Int) -> Bool {
            let elapsed = Double((now - updated).nanoseconds)
            tokens = min(Double(burst), tokens + max(0, elapsed) / interval)
            updated = now
            guard tokens >= 1 else { return false }
            tokens -= 1
            return true
        }
    }

    private struct State {
        var total: Bucket
        var buckets: [Key: Bucket] = [:]
    }

    private let interval: Duration
    private let burst: Int
    private let maximumKeys: Int
    private let state: NIOLockedValueBox<State>

    package init(interval: Duration, burst: Int, maximumKeys: Int = 4096, now: NIODeadline = .now()) {
        self.interval = interval
        self.burst = burst
        self.maximumKeys = maximumKeys
        self.state = NIOLockedValueBox(State(total: Bucket(tokens: Double(burst), updated: now)))
    }

    /// Takes a token from `key`'s bucket and, for an identity, from the total too;
    /// false (and nothing taken) when either is empty.
    package func tryAcquire(_ key: Key, now: NIODeadline = .now()) -> Bool {
        let interval = Double(self.interval.nanoseconds)
        guard interval > 0 else { return true }
        return state.withLockedValue { state in
            var bucket = state.buckets[key] ?? Bucket(tokens: Double(burst), updated: now)
            if state.buckets[key] == nil && state.buckets.count >= maximumKeys,
                let stalest = state.buckets.min(by: { $0.value.updated < $1.value.updated })?.key
            {
                state.buckets.removeValue(forKey: stalest)
            }
            var total = state.total
            let allowed: Bool
            switch key {
            case .source:
                allowed = bucket.take(now: now, interval: interval, burst: burst)
            case .identity:
                allowed = bucket.take(now: now, interval: interval, burst: burst)
                    && total.take(now: now, interval: interval, burst: burst)
            }
            // Refused: nothing is kept, so the refill is computed again next time.
            if allowed {
                state.buckets[key] = bucket
                state.total = total
            }
            return allowed
        }
    }

    /// How many keys have a bucket now.
    package var keyCount: Int { state.withLockedValue { $0.buckets.count } }
}
