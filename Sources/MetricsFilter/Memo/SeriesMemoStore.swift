import Synchronization

/// Hands a policy's series memos to scrapes, all sharing one budget
/// (`filter.memo_budget`): one memo for each way of asking (format and escaping), up
/// to `maximumMemos`. A scrape has its memo alone to fill it, or shares it with the
/// scrapes running at once when there is nothing to fill: the last scrape that had it
/// alone was refused nothing (`SeriesMemo.isSettled`), so any number of scrapes read
/// it together and none changes it. A scrape that finds its memo being filled by
/// another is filtered without one (still right, only slower) rather than filling a
/// second: memos filled at once would split the budget, none holding the whole scrape.
/// Prometheus scrapes a target once an interval (twice for a pair): one scrape at a
/// time has the memo alone or reads it; scrapes that overlap read it together.
public final class SeriesMemoStore: Sendable {
    /// Memos at most: ways of asking (format and escaping) remembered at once.
    public static let maximumMemos = 4

    /// A way of asking: the format (nil: protobuf) and the escaping.
    private struct Asking: Equatable {
        let format: ExpositionFormat?
        let names: NameEscaping?
    }

    private struct Pool {
        var free: [SeriesMemo] = []
        /// Memos lent to scrapes that share them, with how many share each.
        var shared: [(memo: SeriesMemo, readers: Int)] = []
        /// How the scrapes that have a memo alone asked.
        var filling: [(memo: ObjectIdentifier, asking: Asking)] = []
        var made = 0
        /// Leases so far, and the count at each free memo's last.
        var leases = 0
        var lastLeased: [ObjectIdentifier: Int] = [:]
    }

    /// A free memo not lent for this many leases since it came back is emptied: the
    /// bytes it held (of a scraper that stopped, or asked otherwise once) go back to
    /// the shared budget.
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

    /// A memo for one scrape under `policy` that asked for `format` (nil: protobuf)
    /// and `names`, or nil; it comes back when the lease ends (the scrape ended or was
    /// cut). The memo that serves this way of asking, shared when it is settled under
    /// `policy`, else alone; nil while another scrape has it alone or scrapes that
    /// share it fell behind. For a way of asking no memo serves yet: a new one while
    /// there are fewer than `maximumMemos` (so that scrapers that ask differently do
    /// not make one memo forget for the other), else the one given back longest ago
    /// of those free.
    public func lease(policy: FilterPolicy, format: ExpositionFormat? = nil, names: NameEscaping? = nil) -> Lease? {
        guard shared.limit > 0 else { return nil }
        let asking = Asking(format: format, names: names)
        let chosen: (SeriesMemo, sharing: Bool)? = pool.withLock { pool in
            pool.leases += 1
            for idle in pool.free where pool.leases - (pool.lastLeased[ObjectIdentifier(idle)] ?? 0) > Self.idleLeases {
                idle.removeAll()
            }
            func serves(_ memo: SeriesMemo) -> Bool { memo.serves(format: format, names: names) }
            if let index = pool.shared.firstIndex(where: { serves($0.memo) }) {
                guard pool.shared[index].memo.isSettled(for: policy) else { return nil }
                pool.shared[index].readers += 1
                return (pool.shared[index].memo, true)
            }
            if pool.filling.contains(where: { $0.asking == asking }) { return nil }
            let chosen: SeriesMemo
            if let index = pool.free.lastIndex(where: serves) {
                chosen = pool.free.remove(at: index)
            } else if pool.made < Self.maximumMemos {
                pool.made += 1
                chosen = SeriesMemo(sharing: shared)
            } else if !pool.free.isEmpty {
                chosen = pool.free.removeFirst()
            } else {
                return nil
            }
            pool.lastLeased[ObjectIdentifier(chosen)] = pool.leases
            // Taken over for another way of asking, it is filled anew: never shared.
            if serves(chosen), chosen.isSettled(for: policy) {
                pool.shared.append((chosen, 1))
                return (chosen, true)
            }
            pool.filling.append((ObjectIdentifier(chosen), asking))
            return (chosen, false)
        }
        return chosen.map { Lease(memo: $0.0, sharing: $0.sharing, store: self) }
    }

    fileprivate func giveBack(_ returned: SeriesMemo, sharing: Bool) {
        pool.withLock { pool in
            pool.lastLeased[ObjectIdentifier(returned)] = pool.leases
            guard sharing else {
                pool.filling.removeAll { $0.memo == ObjectIdentifier(returned) }
                pool.free.append(returned)
                return
            }
            guard let index = pool.shared.firstIndex(where: { $0.memo === returned }) else { return }
            pool.shared[index].readers -= 1
            guard pool.shared[index].readers == 0 else { return }
            pool.shared.remove(at: index)
            returned.endSharing()
            pool.free.append(returned)
        }
    }

    /// One scrape's hold on a memo.
    public final class Lease: Sendable {
        public let memo: SeriesMemo
        /// Whether the scrape shares the memo with others, and so only reads it
        /// (`StreamingFilter`'s and `ProtobufFilter`'s `sharingMemo`).
        public let sharing: Bool
        private let store: SeriesMemoStore

        fileprivate init(memo: SeriesMemo, sharing: Bool, store: SeriesMemoStore) {
            self.memo = memo
            self.sharing = sharing
            self.store = store
        }

        deinit {
            store.giveBack(memo, sharing: sharing)
        }
    }
}
