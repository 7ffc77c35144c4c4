/// The series a memo's entries write, numbered, so that a scrape's duplicate check on
/// a remembered series is one bit (`WrittenSeries`) instead of a random probe of a
/// table as large as the scrape: a fifth of a steady protobuf scrape's time at 100k
/// metrics, and a third of the gateway's at 100k text series, where four scrapes at
/// once and their bodies push the tables out of the cache.
///
/// Entries whose series share a fingerprint (a rule that made two label sets one) share
/// a number: the first such entry's. Every series a scrape writes is checked under one
/// rule (`SeriesMemo.seriesNumber(for:)`): its fingerprint's number when one of these
/// entries writes it, its fingerprint otherwise, so that a series met by replay and by
/// the full path in one scrape is still met twice. Fingerprints compare by their 64
/// high bits, as `FingerprintSet` compares them.
///
/// Built when a scrape that has the memo alone ends or begins and the entries changed
/// since (`SeriesMemo.scrapeEnded`: entries it added; `beginScrape`: entries moved down
/// by forgetting, which drops the numbers); never changed while a scrape runs, so that
/// scrapes at once read it together. Entries remembered after it was built have no number of their own
/// (they are looked up by fingerprint). Its bytes count in the memo's budget; when the
/// budget has no room for them, there are none, and every series is checked by
/// fingerprint, as before.
struct SeriesNumbers {
    /// Per entry, below `count`: the number of the series it writes, or -1 for an
    /// entry that writes none (a drop).
    private var byEntry: [Int32]
    /// Open addressing over the numbers by their series' fingerprint, -1 free; at most
    /// half full.
    private var slots: [Int32]
    /// The entries numbered, and the bits a scrape's check needs.
    let count: Int

    /// What it holds, as its budget counts it.
    var bytes: Int { Self.bytes(for: count) }

    /// The bytes numbering `count` entries takes.
    static func bytes(for count: Int) -> Int {
        (count + slotCount(for: count)) * MemoryLayout<Int32>.stride
    }

    private static func slotCount(for count: Int) -> Int {
        var size = 16
        while size < count * 2 { size *= 2 }
        return size
    }

    init(entries: UnsafePointer<SeriesMemo.Entry>, count: Int) {
        self.count = count
        byEntry = Array(repeating: -1, count: count)
        slots = Array(repeating: -1, count: Self.slotCount(for: count))
        let mask = slots.count - 1
        for number in 0..<count where entries[number].dropReason == nil {
            let high = entries[number].series.high
            var slot = Int(truncatingIfNeeded: high) & mask
            while slots[slot] >= 0, entries[Int(slots[slot])].series.high != high { slot = (slot + 1) & mask }
            if slots[slot] < 0 { slots[slot] = Int32(number) }
            byEntry[number] = slots[slot]
        }
    }

    /// The number of the series entry `number` writes, if it was numbered.
    func number(ofEntry number: Int32) -> Int32? {
        guard Int(number) < count else { return nil }
        let series = byEntry[Int(number)]
        return series >= 0 ? series : nil
    }

    /// The number of `series`, when a numbered entry writes it.
    func number(for series: SeriesFingerprint, entries: UnsafePointer<SeriesMemo.Entry>) -> Int32? {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: series.high) & mask
        while slots[slot] >= 0 {
            if entries[Int(slots[slot])].series.high == series.high { return slots[slot] }
            slot = (slot + 1) & mask
        }
        return nil
    }
}

/// A scrape's way to its memo's series numbers (what `ExpositionStructure`'s duplicate
/// check asks), without a retain per series: the filter that holds it holds the memo.
struct SeriesNumbering {
    private let memo: Unmanaged<SeriesMemo>
    /// The series numbered when the scrape began: the bits its check needs.
    let count: Int

    /// nil without a memo or when the memo numbered nothing.
    init?(memo: SeriesMemo?) {
        guard let memo, memo.numberedSeries > 0 else { return nil }
        self.memo = Unmanaged.passUnretained(memo)
        count = memo.numberedSeries
    }

    /// The number `series` is checked under: that of memo entry `entry` when a
    /// remembered series is replayed, else the one its fingerprint finds (nil: none).
    func number(for series: SeriesFingerprint, entry: Int32?) -> Int32? {
        memo._withUnsafeGuaranteedRef { memo in
            if let entry { return memo.seriesNumber(ofEntry: entry, series: series) }
            return memo.seriesNumber(for: series)
        }
    }
}
