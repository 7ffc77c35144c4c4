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
    private var units: HashedKeyTable<SeriesTracker.UnitKey, Bool>
    private var reservedRemaining: Int
    private let now: SeriesTracker.Ticks
    private let refreshBefore: SeriesTracker.Ticks

    init(tracker: SeriesTracker) {
        self.tracker = tracker
        let start = ContinuousClock.now
        tracker.expireIfDue(now: start)
        now = tracker.ticks(start)
        refreshBefore = tracker.refreshTime(for: now)
        reservedRemaining = tracker.reservedSamples()
        // Starts small (1024 slots) and grows with the units met: a scraper that
        // stalls holds (and is charged in the buffer budget for) only what its scrape
        // reached.
        units = HashedKeyTable(placeholder: false)
    }

    /// Bytes held for the rest of the scrape.
    var retainedBytes: Int { units.retainedBytes }

    /// Admits `samples` samples of the unit `key` (a protobuf histogram is several at
    /// once); `samplesSoFar` is what the scrape wrote. A later sample of a refused unit
    /// is refused as `unit_refused`.
    mutating func admit(_ key: SeriesTracker.UnitKey, family: UnsafeBufferPointer<UInt8>, values: [SeriesTracker.ValueKey],
                        samplesSoFar: Int, samples: Int = 1) -> Verdict {
        if let admitted = units[key] {
            guard admitted else { return .refused(.unitRefused) }
            tracker.countSample(key, count: samples)
            return .admitted
        }
        // The tracker refuses a new unit whose first sample would pass the limit; the
        // unit's last one must not either.
        switch tracker.admit(key: key, family: family, values: values, samplesSoFar: samplesSoFar + samples - 1,
                             reservedRemaining: reservedRemaining, samples: samples, now: now,
                             refreshBefore: refreshBefore) {
        case .refused(let reason):
            units[key] = false
            return .refused(reason)
        case .known(let previousSamples):
            // Its samples were reserved; they are counted as they pass now.
            reservedRemaining = max(0, reservedRemaining - previousSamples)
        case .new:
            break
        }
        units[key] = true
        return .admitted
    }
}
