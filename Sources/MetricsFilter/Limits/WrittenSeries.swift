/// The series one scrape wrote, for its duplicate check: a bit per series the memo
/// numbered (`SeriesNumbers`), which a steady scrape meets in order, and the
/// fingerprints of the others. A series goes to one or the other by the one rule
/// `SeriesMemo.seriesNumber(for:)` gives, so it is found wherever it was written.
struct WrittenSeries {
    private var bits: [UInt64]
    private var others: FingerprintSet
    /// Series written.
    private(set) var count = 0

    /// - Parameters:
    ///   - numbered: the memo's numbered series (the bits).
    ///   - expectedOthers: fingerprints to make room for up front (see `FingerprintSet`).
    init(numbered: Int, expectedOthers: Int) {
        bits = Array(repeating: 0, count: (numbered + 63) / 64)
        others = FingerprintSet(expectedCount: expectedOthers)
    }

    var retainedBytes: Int { bits.capacity * MemoryLayout<UInt64>.stride + others.retainedBytes }

    /// Whether `series` (numbered `number` by the memo, if it is) was written.
    func contains(_ series: SeriesFingerprint, number: Int32?) -> Bool {
        if let number { return bits[Int(number) >> 6] & (UInt64(1) << UInt64(number & 63)) != 0 }
        return others.contains(series)
    }

    /// Writes down `series` (numbered `number` by the memo, if it is); false when it
    /// was written already.
    mutating func insert(_ series: SeriesFingerprint, number: Int32?) -> Bool {
        if let number {
            let word = Int(number) >> 6
            let bit = UInt64(1) << UInt64(number & 63)
            guard bits[word] & bit == 0 else { return false }
            bits[word] |= bit
        } else {
            guard !others.contains(series) else { return false }
            others.insert(series)
        }
        count += 1
        return true
    }
}
