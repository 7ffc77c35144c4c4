/// One scrape's side of a `SeriesTracker`: which units this scrape admitted or
/// refused already (a unit's later samples follow its first), and the samples
/// reserved for units admitted by earlier scrapes, so that `sample_limit` never lets
/// a new series take a known one's place.
struct ScrapeAdmission {
    enum Verdict: Equatable {
        case admitted
        case refused(DropReason)
    }

    let tracker: SeriesTracker
    private var units: ScrapeUnits

    init(tracker: SeriesTracker) {
        self.tracker = tracker
        let start = ContinuousClock.now
        tracker.expireIfDue(now: start)
        let now = tracker.ticks(start)
        units = ScrapeUnits(now: now, refreshBefore: tracker.refreshTime(for: now),
                            reservedRemaining: tracker.reservedSamples())
    }

    /// Bytes held for the rest of the scrape.
    var retainedBytes: Int { units.retainedBytes }

    /// Admits `samples` samples of the unit `key` (a protobuf histogram is several at
    /// once); `samplesSoFar` is what the scrape wrote. A later sample of a refused unit
    /// is refused as `unit_refused`.
    mutating func admit(_ key: SeriesTracker.UnitKey, family: UnsafeBufferPointer<UInt8>, values: [SeriesTracker.ValueKey],
                        samplesSoFar: Int, samples: Int = 1) -> Verdict {
        var hint = SeriesTracker.UnitHint.unknown
        return admit(key, family: family, values: values, samplesSoFar: samplesSoFar, samples: samples, unitHint: &hint)
    }

    /// The same, given what the last admission of the key found (`unitHint`), which is
    /// set to what this one finds: a remembered series keeps it, so that its unit is
    /// found (or known absent) without a probe of the tracker's table.
    mutating func admit(_ key: SeriesTracker.UnitKey, family: UnsafeBufferPointer<UInt8>, values: [SeriesTracker.ValueKey],
                        samplesSoFar: Int, samples: Int = 1, unitHint: inout SeriesTracker.UnitHint) -> Verdict {
        tracker.admit(key, family: family, values: values, samplesSoFar: samplesSoFar, samples: samples, scrape: &units,
                      unitHint: &unitHint)
    }
}

/// What a scrape did with units so far, as `SeriesTracker.admit` reads and writes it
/// under the tracker's lock: a mark per admitted unit it met, by the unit's number in
/// the tracker (a flat array: a steady scrape meets the units in the order they were
/// numbered), and the units it refused (by 64 bits of their keys: a refused unit has
/// no number).
///
/// It grows with the units the scrape reached, 4 bytes each, in pages of 4,096 (the
/// table of keys it replaces took 48 bytes or more a unit: 24-byte entries, at most
/// half full); a scraper that stalls is charged for it in the buffer budget.
struct ScrapeUnits {
    /// The scrape's start in the tracker's ticks, and that less the tracker's value
    /// refresh (a scrape's instants are reckoned once).
    let now: SeriesTracker.Ticks
    let refreshBefore: SeriesTracker.Ticks
    /// Samples still reserved for units admitted before this scrape.
    var reservedRemaining: Int
    /// Per unit number: 0, or the unit's generation + 1 when this scrape met it; in
    /// pages of `pageSize`, each made when a number in it is first met, so that a
    /// scrape is charged for the stretches of numbers it reached.
    private var pages: [[UInt32]] = []
    private static let pageShift = 12
    private static let pageSize = 1 << pageShift
    /// The units this scrape refused, by 64 bits of their keys, as the duplicate check
    /// keeps series: 8 bytes a slot, at most half full. (A table of whole keys and a
    /// flag took 24 a slot, and a scrape at 100k series with limits that refuse most of
    /// them held 6 MiB of it, each probe missing the cache.) Two units of a scrape of a
    /// million share 64 bits with a chance of about 3e-8: a unit that shares them with
    /// one refused before it is refused too, admitted before or not.
    private var refused: FingerprintSet?

    init(now: SeriesTracker.Ticks, refreshBefore: SeriesTracker.Ticks, reservedRemaining: Int) {
        self.now = now
        self.refreshBefore = refreshBefore
        self.reservedRemaining = reservedRemaining
    }

    var retainedBytes: Int {
        var bytes = pages.capacity * MemoryLayout<[UInt32]>.stride + (refused?.retainedBytes ?? 0)
        for page in pages { bytes += page.capacity * MemoryLayout<UInt32>.stride }
        return bytes
    }

    func mark(of number: Int) -> UInt32 {
        let page = number >> Self.pageShift
        guard page < pages.count, !pages[page].isEmpty else { return 0 }
        return pages[page][number & (Self.pageSize - 1)]
    }

    mutating func setMark(_ mark: UInt32, of number: Int) {
        let page = number >> Self.pageShift
        if page >= pages.count { pages.append(contentsOf: repeatElement([], count: page + 1 - pages.count)) }
        if pages[page].isEmpty { pages[page] = Array(repeating: 0, count: Self.pageSize) }
        pages[page][number & (Self.pageSize - 1)] = mark
    }

    /// Whether this scrape refused `key` already.
    func refusedAny(_ key: SeriesTracker.UnitKey) -> Bool {
        refused?.contains(bits: key.high) ?? false
    }

    mutating func refuse(_ key: SeriesTracker.UnitKey) {
        if refused == nil { refused = FingerprintSet() }
        refused!.insert(bits: key.high)
    }
}
