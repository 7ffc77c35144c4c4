import Synchronization

/// Hands a policy's series memos to scrapes: one memo per scrape running at once, up
/// to `maximumMemos`, all sharing one budget (`filter.memo_budget`). A scrape takes
/// the memo last given back among those that served its format and escaping (see
/// `lease`); past the maximum, a scrape is filtered without one: still right, only
/// slower. Prometheus scrapes a target once an interval (twice for a pair), so one
/// memo is the rule; the others serve scrapes that overlap, or scrapers that ask
/// differently.
public final class SeriesMemoStore: Sendable {
    /// Scrapes that can each have a memo at once.
    public static let maximumMemos = 4

    private struct Pool {
        var free: [SeriesMemo] = []
        var made = 0
        /// Leases so far, and the count at each free memo's last.
        var leases = 0
        var lastLeased: [ObjectIdentifier: Int] = [:]
    }

    /// A free memo not lent for this many leases is emptied: the bytes it held (of a
    /// scraper that stopped, or asked otherwise once) go back to the shared budget.
    static let idleLeases = 64

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
    /// served `format` (nil: protobuf) and `names`; else a new one while there are
    /// fewer than `maximumMemos` (so that scrapers that ask differently do not make one
    /// memo forget for the other); else the last given back.
    public func lease(format: ExpositionFormat? = nil, names: NameEscaping? = nil) -> Lease? {
        guard shared.limit > 0 else { return nil }
        let memo: SeriesMemo? = pool.withLock { pool in
            pool.leases += 1
            for idle in pool.free where pool.leases - (pool.lastLeased[ObjectIdentifier(idle)] ?? 0) > Self.idleLeases {
                idle.removeAll()
            }
            let chosen: SeriesMemo
            if let index = pool.free.lastIndex(where: { $0.serves(format: format, names: names) }) {
                chosen = pool.free.remove(at: index)
            } else if pool.made < Self.maximumMemos {
                pool.made += 1
                chosen = SeriesMemo(sharing: shared)
            } else if let memo = pool.free.popLast() {
                chosen = memo
            } else {
                return nil
            }
            pool.lastLeased[ObjectIdentifier(chosen)] = pool.leases
            return chosen
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
