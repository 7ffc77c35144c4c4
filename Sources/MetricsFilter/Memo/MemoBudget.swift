import Synchronization

/// Bytes that memos may hold together: one memo's own, or the memos of a store's
/// (one per way of asking: format and escaping) sharing `filter.memo_budget`.
final class MemoBudget: Sendable {
    let limit: Int
    private let used = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = max(0, limit)
    }

    var usedBytes: Int { used.load(ordering: .relaxed) }

    /// Takes `bytes` if they fit.
    func take(_ bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while true {
            guard current + bytes <= limit else { return false }
            let (exchanged, original) = used.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    func give(_ bytes: Int) {
        used.subtract(bytes, ordering: .relaxed)
    }
}
