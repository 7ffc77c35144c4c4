import Synchronization

/// Hands a policy's `SeriesMemo` to one scrape at a time. A scrape that finds it
/// taken (two scrapers at once) is filtered without it: still right, only slower.
public final class SeriesMemoStore: Sendable {
    private let memo: Mutex<SeriesMemo?>
    public let budget: Int

    /// - Parameter budget: the memo's bytes; 0: no memo at all.
    public init(budget: Int) {
        self.budget = budget
        memo = Mutex(budget > 0 ? SeriesMemo(budget: budget) : nil)
    }

    /// The memo for one scrape, or nil while another scrape has it; it comes back
    /// when the lease ends (the scrape ended or was cut).
    public func lease() -> Lease? {
        memo.withLock { $0.take() }.map { Lease(memo: $0, store: self) }
    }

    fileprivate func giveBack(_ returned: SeriesMemo) {
        memo.withLock { $0 = returned }
    }

    /// One scrape's hold on the memo.
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
