import Synchronization

/// Limits that degrade a scrape series by series instead of failing it, as
/// Prometheus's own limits do.
public struct SeriesLimits: Sendable, Hashable {
    /// Labels per series (the name not counted); more: the series is dropped.
    public var labelLimit: Int?
    /// Bytes in one label value; longer: the series is dropped.
    public var labelValueLengthLimit: Int?
    /// Samples per scrape: new series stop being admitted where they would pass it.
    public var sampleLimit: Int?
    /// Series per metric family.
    public var seriesPerMetric: Int?
    /// Distinct values per label name, over all metrics.
    public var valuesPerLabel: Int?
    /// An admitted series not seen for this long is forgotten (and must be admitted anew).
    public var idleTimeout: Duration

    public init(labelLimit: Int? = nil, labelValueLengthLimit: Int? = nil, sampleLimit: Int? = nil,
                seriesPerMetric: Int? = nil, valuesPerLabel: Int? = nil, idleTimeout: Duration = .seconds(600)) {
        self.labelLimit = labelLimit
        self.labelValueLengthLimit = labelValueLengthLimit
        self.sampleLimit = sampleLimit
        self.seriesPerMetric = seriesPerMetric
        self.valuesPerLabel = valuesPerLabel
        self.idleTimeout = idleTimeout
    }

    /// Whether any limit needs the admission tracker.
    public var needsTracker: Bool { sampleLimit != nil || seriesPerMetric != nil || valuesPerLabel != nil }
}

/// Remembers which series were admitted, across scrapes, so that admission is stable:
/// a series admitted once stays admitted while it keeps appearing; only new series
/// beyond a limit are refused. A histogram or summary (its buckets or quantiles,
/// `_sum`, `_count`, `_created`) is one unit: the family name and the labels without
/// `le` and `quantile`.
///
/// Memory: per admitted unit a 16-byte key, its family's index, last-seen time and
/// sample count in a hash table (about 64 bytes with the table's overhead), plus 24
/// bytes per admitted distinct label value when `valuesPerLabel` is set. Shared by
/// the scrapes of one policy; thread-safe.
public final class SeriesTracker: Sendable {
    struct UnitKey: Hashable {
        var high: UInt64
        var low: UInt64

        init(_ family: [UInt8], _ labels: [Label]) {
            var set = LabelSet(labels: labels)
            set.set(LabelSet.metricNameLabel, family)
            let fingerprint = SeriesFingerprint(set)
            high = fingerprint.high
            low = fingerprint.low
        }
    }

    struct Unit {
        var family: [UInt8]
        var lastSeen: ContinuousClock.Instant
        var samples: Int
    }

    struct ValueKey: Hashable {
        var label: [UInt8]
        var value: UInt64
    }

    struct State {
        var units: [UnitKey: Unit] = [:]
        var perFamily: [[UInt8]: Int] = [:]
        var values: [ValueKey: ContinuousClock.Instant] = [:]
        var perLabel: [[UInt8]: Int] = [:]
        var lastExpiry = ContinuousClock.now
    }

    public let limits: SeriesLimits
    private let state = Mutex(State())

    public init(limits: SeriesLimits) {
        self.limits = limits
    }

    /// Admitted units now, by family name.
    public var admittedPerFamily: [String: Int] {
        state.withLock { state in
            Dictionary(uniqueKeysWithValues: state.perFamily.map { (String(decoding: $0.key, as: UTF8.self), $0.value) })
        }
    }

    public var admittedUnits: Int { state.withLock { $0.units.count } }

    /// Samples expected from units admitted before this scrape: the reservation that
    /// keeps `sampleLimit` from letting a new series take an old one's place.
    func reservedSamples() -> Int {
        state.withLock { state in state.units.values.reduce(0) { $0 + $1.samples } }
    }

    enum Admission: Equatable {
        /// Admitted before; it brought this many samples last time.
        case known(previousSamples: Int)
        case new
        case refused(reason: String)
    }

    /// Admits a unit, or says why not.
    func admit(family: [UInt8], unitLabels: [Label], key: UnitKey, samplesSoFar: Int, reservedRemaining: Int,
               now: ContinuousClock.Instant) -> Admission {
        state.withLock { state in
            expireIfDue(&state, now: now)
            if var unit = state.units[key] {
                let previous = unit.samples
                unit.lastSeen = now
                state.units[key] = unit
                touchValues(&state, unitLabels, now: now)
                return .known(previousSamples: previous)
            }
            if let limit = limits.sampleLimit, samplesSoFar + reservedRemaining >= limit {
                return .refused(reason: "sample_limit")
            }
            if let limit = limits.seriesPerMetric, state.perFamily[family, default: 0] >= limit {
                return .refused(reason: "series_limit")
            }
            if let limit = limits.valuesPerLabel {
                for label in unitLabels {
                    let valueKey = ValueKey(label: label.name, value: Self.hash(label.value))
                    if state.values[valueKey] == nil && state.perLabel[label.name, default: 0] >= limit {
                        return .refused(reason: "label_value_limit")
                    }
                }
            }
            state.units[key] = Unit(family: family, lastSeen: now, samples: 0)
            state.perFamily[family, default: 0] += 1
            touchValues(&state, unitLabels, now: now)
            return .new
        }
    }

    /// Counts one more sample of an admitted unit in this scrape.
    func countSample(_ key: UnitKey, firstOfScrape: Bool) {
        state.withLock { state in
            guard var unit = state.units[key] else { return }
            unit.samples = firstOfScrape ? 1 : unit.samples + 1
            state.units[key] = unit
        }
    }

    private func touchValues(_ state: inout State, _ labels: [Label], now: ContinuousClock.Instant) {
        guard limits.valuesPerLabel != nil else { return }
        for label in labels {
            let key = ValueKey(label: label.name, value: Self.hash(label.value))
            if state.values.updateValue(now, forKey: key) == nil {
                state.perLabel[label.name, default: 0] += 1
            }
        }
    }

    /// Forgets units and values idle for longer than the timeout; at most once a second.
    private func expireIfDue(_ state: inout State, now: ContinuousClock.Instant) {
        guard now - state.lastExpiry >= .seconds(1) else { return }
        state.lastExpiry = now
        let cutoff = now - limits.idleTimeout
        for (key, unit) in state.units where unit.lastSeen < cutoff {
            state.units.removeValue(forKey: key)
            state.perFamily[unit.family, default: 1] -= 1
            if state.perFamily[unit.family] == 0 { state.perFamily.removeValue(forKey: unit.family) }
        }
        for (key, seen) in state.values where seen < cutoff {
            state.values.removeValue(forKey: key)
            state.perLabel[key.label, default: 1] -= 1
            if state.perLabel[key.label] == 0 { state.perLabel.removeValue(forKey: key.label) }
        }
    }

    static func hash(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash
    }
}
