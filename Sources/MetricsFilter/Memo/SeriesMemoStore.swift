import Synchronization

/// Hands a policy's series memos to scrapes: one memo per scrape running at once, up
/// to `maximumMemos`, all sharing one budget (`filter.memo_budget`). A scrape takes
/// the memo last given back (the most up to date); past the maximum, a scrape is
/// filtered without one: still right, only slower. Prometheus scrapes a target once
/// an interval (twice for a pair), so one memo is the rule; the others serve scrapes
/// that overlap.
public final class SeriesMemoStore: Sendable {
    /// Scrapes that can each have a memo at once.
    public static let maximumMemos = 4

    private struct Pool {
        var free: [SeriesMemo] = []
        var made = 0
    }

    private let pool = Mutex(Pool())
    private let shared: MemoBudget
    public var budget: Int { shared.limit }
    /// What the memos hold together.
    public var usedBytes: Int { shared.usedBytes }

    /// - Parameter budget: the memos' bytes together; 0: no memo at all.
    public init(budget: Int) {
        shared = MemoBudget(limit: budget)
    }

    /// A memo for one scrape, or nil when every memo is lent; it comes back when the
    /// lease ends (the scrape ended or was cut). The last given back of those that
    /// served `format` and `names` (scrapers that ask differently do not make one
    /// memo forget for the other), else the last given back.
    public func lease(format: ExpositionFormat? = nil, names: NameEscaping? = nil) -> Lease? {
        guard shared.limit > 0 else { return nil }
        let memo: SeriesMemo? = pool.withLock { pool in
            if let index = pool.free.lastIndex(where: { $0.serves(format: format, names: names) }) {
                return pool.free.remove(at: index)
            }
            if let memo = pool.free.popLast() { return memo }
            guard pool.made < Self.maximumMemos else { return nil }
            pool.made += 1
            return SeriesMemo(sharing: shared)
        }
        return memo.map { Lease(memo: $0, store: self) }
    }

    fileprivate func giveBack(_ returned: SeriesMemo) {
        pool.withLock { $0.free.append(returned) }
    }

    /// One scrape's hold on a memo.
    public final class Lease: Sendable {
        public let memo: SeriesMemo
        private let store: SeriesMemoStore

        fileprivate init(memo: SeriesMemo, store: SeriesMemoStore) {
            self.memo = memo
            self.store = store
        }

        deinit {
            store.giveBack(memo)
        }
    }
}
