import NIOConcurrencyHelpers
import NIOCore

/// exporter-toolkit's `rate_limit`: one token per `interval`, at most `burst` saved
/// up, shared by all clients. Checked before any auth work, so a flood costs no bcrypt.
package final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: NIODeadline
    }

    private let interval: Duration
    private let burst: Int
    private let bucket: NIOLockedValueBox<Bucket>

    package init(interval: Duration, burst: Int) {
        self.interval = interval
        self.burst = burst
        self.bucket = NIOLockedValueBox(Bucket(tokens: Double(burst), updated: .now()))
    }

    /// Takes a token if one is there.
    package func tryAcquire(now: NIODeadline = .now()) -> Bool {
        let intervalNanoseconds = Double(interval.nanoseconds)
        return bucket.withLockedValue { bucket in
            if intervalNanoseconds <= 0 { return true }
            let elapsed = Double((now - bucket.updated).nanoseconds)
            bucket.tokens = min(Double(burst), bucket.tokens + max(0, elapsed) / intervalNanoseconds)
            bucket.updated = now
            guard bucket.tokens >= 1 else { return false }
            bucket.tokens -= 1
            return true
        }
    }
}
