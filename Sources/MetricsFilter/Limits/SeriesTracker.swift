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
/// Memory: per admitted unit a 16-byte key, a reference to its family's name,
/// last-seen time and sample count in a hash table (about 64 bytes with the table's
/// overhead), plus a 16-byte key and a last-seen time per admitted distinct label
/// value when `valuesPerLabel` is set. Shared by the scrapes of one policy;
/// thread-safe.
public final class SeriesTracker: Sendable {
    /// A unit: the fingerprint of its family name and its labels but `le` and `quantile`.
    struct UnitKey: Hashable {
        var high: UInt64
        var low: UInt64

        init(_ family: [UInt8], _ labels: [Label]) {
            self.init(SeriesFingerprint(name: family, labels: labels))
        }

        init(_ fingerprint: SeriesFingerprint) {
            high = fingerprint.high
            low = fingerprint.low
        }
    }

    /// One label of a unit, as `valuesPerLabel` counts it: hashes of its name and value.
    struct ValueKey: Hashable {
        var label: UInt64
        var value: UInt64

        init(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
            label = ByteKey.fnv1a(name)
            self.value = ByteKey.fnv1a(value)
        }

        init(_ label: Label) {
            self = label.name.withUnsafeBufferPointer { name in
                label.value.withUnsafeBufferPointer { ValueKey(name: name, value: $0) }
            }
        }
    }

    struct Unit {
        var family: [UInt8]
        var lastSeen: ContinuousClock.Instant
        var samples: Int
    }

    struct State {
        var units: [UnitKey: Unit] = [:]
        var perFamily: [ByteKey: Int] = [:]
        var values: [ValueKey: ContinuousClock.Instant] = [:]
        var perLabel: [UInt64: Int] = [:]
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
            Dictionary(uniqueKeysWithValues: state.perFamily.map { (String(decoding: $0.key.bytes, as: UTF8.self), $0.value) })
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
        case refused(reason: DropReason)
    }

    /// Admits a unit, or says why not. `values` are its labels (but `le` and
    /// `quantile`), needed when `valuesPerLabel` is set. `family()` gives the family
    /// name; it is asked only for a unit not admitted before.
    func admit(key: UnitKey, family: () -> [UInt8], values: [ValueKey], samplesSoFar: Int, reservedRemaining: Int,
               now: ContinuousClock.Instant) -> Admission {
        state.withLock { state in
            expireIfDue(&state, now: now)
            if var unit = state.units[key] {
                let previous = unit.samples
                unit.lastSeen = now
                state.units[key] = unit
                touchValues(&state, values, now: now)
                return .known(previousSamples: previous)
            }
            if let limit = limits.sampleLimit, samplesSoFar + reservedRemaining >= limit {
                return .refused(reason: .sampleLimit)
            }
            let familyName = ByteKey(family())
            if let limit = limits.seriesPerMetric, state.perFamily[familyName, default: 0] >= limit {
                return .refused(reason: .seriesLimit)
            }
            if let limit = limits.valuesPerLabel {
                for value in values where state.values[value] == nil && state.perLabel[value.label, default: 0] >= limit {
                    return .refused(reason: .labelValueLimit)
                }
            }
            state.units[key] = Unit(family: familyName.bytes, lastSeen: now, samples: 0)
            state.perFamily[familyName, default: 0] += 1
            touchValues(&state, values, now: now)
            return .new
        }
    }

    /// Counts `count` more samples of an admitted unit in this scrape.
    func countSample(_ key: UnitKey, firstOfScrape: Bool, count: Int = 1) {
        state.withLock { state in
            guard var unit = state.units[key] else { return }
            unit.samples = firstOfScrape ? count : unit.samples + count
            state.units[key] = unit
        }
    }

    private func touchValues(_ state: inout State, _ values: [ValueKey], now: ContinuousClock.Instant) {
        guard limits.valuesPerLabel != nil else { return }
        for value in values where state.values.updateValue(now, forKey: value) == nil {
            state.perLabel[value.label, default: 0] += 1
        }
    }

    /// Forgets units and values idle for longer than the timeout; at most once a second.
    private func expireIfDue(_ state: inout State, now: ContinuousClock.Instant) {
        guard now - state.lastExpiry >= .seconds(1) else { return }
        state.lastExpiry = now
        let cutoff = now - limits.idleTimeout
        for (key, unit) in state.units where unit.lastSeen < cutoff {
            state.units.removeValue(forKey: key)
            state.perFamily[ByteKey(unit.family), default: 1] -= 1
            if state.perFamily[ByteKey(unit.family)] == 0 { state.perFamily.removeValue(forKey: ByteKey(unit.family)) }
        }
        for (key, seen) in state.values where seen < cutoff {
            state.values.removeValue(forKey: key)
            state.perLabel[key.label, default: 1] -= 1
            if state.perLabel[key.label] == 0 { state.perLabel.removeValue(forKey: key.label) }
        }
    }
}
