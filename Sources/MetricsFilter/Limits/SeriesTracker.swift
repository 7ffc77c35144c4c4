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

        init(label: UInt64, value: UInt64) {
            self.label = label
            self.value = value
        }

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

    /// An instant as nanoseconds since the tracker was made: compared and stored as
    /// a plain integer (`ContinuousClock.Instant`'s comparison cost as much as a
    /// table lookup per series).
    typealias Ticks = Int64

    struct Unit {
        /// Its family's number in `State.families`.
        var family: Int
        var lastSeen: Ticks
        var samples: Int
        /// When its label values were last marked seen (see `valueRefresh`).
        var valuesSeen: Ticks
    }

    struct State {
        var units = HashedKeyTable<UnitKey, Unit>(placeholder: Unit(family: 0, lastSeen: 0, samples: 0, valuesSeen: 0))
        /// Family names, numbered as units refer to them, with their admitted units.
        var families: [ByteKey] = []
        var familyNumbers: [ByteKey: Int] = [:]
        var perFamily: [Int] = []
        /// Numbers of families whose last unit was forgotten, to give again.
        var freeFamilyNumbers: [Int] = []
        /// The family last looked up, by number: a family's units come together.
        var lastFamily: Int?
        var values = HashedKeyTable<ValueKey, Ticks>(placeholder: 0)
        var perLabel = HashedKeyTable<UInt64, Int>(placeholder: 0)
        var lastExpiry = ContinuousClock.now
    }

    public let limits: SeriesLimits
    private let state = Mutex(State())
    /// How often a known unit marks its label values seen: an eighth of the idle
    /// timeout, so that a steady scrape does not touch every value of every series.
    /// Values are then kept for the timeout plus this after their last unit was
    /// seen (never forgotten before the timeout: the limit errs on the strict side).
    private let valueRefresh: Ticks
    private let origin = ContinuousClock.now

    public init(limits: SeriesLimits) {
        self.limits = limits
        valueRefresh = Self.nanoseconds(limits.idleTimeout / 8)
    }

    /// Saturating: a timeout of centuries is "never" (`Ticks.max / 4`, so that sums
    /// and differences of ticks stay far from overflowing).
    private static func nanoseconds(_ duration: Duration) -> Ticks {
        let (seconds, attoseconds) = duration.components
        let limit = Ticks.max / 4
        guard seconds < limit / 1_000_000_000 else { return limit }
        guard seconds > -(limit / 1_000_000_000) else { return -limit }
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// An instant as this tracker's ticks.
    func ticks(_ instant: ContinuousClock.Instant) -> Ticks {
        Self.nanoseconds(instant - origin)
    }

    /// Admitted units now, by family name.
    public var admittedPerFamily: [String: Int] {
        state.withLock { state in
            var result: [String: Int] = [:]
            for (number, count) in state.perFamily.enumerated() where count > 0 {
                result[String(decoding: state.families[number].bytes, as: UTF8.self)] = count
            }
            return result
        }
    }

    public var admittedUnits: Int { state.withLock { $0.units.count } }

    /// Samples expected from units admitted before this scrape: the reservation that
    /// keeps `sampleLimit` from letting a new series take an old one's place.
    func reservedSamples() -> Int {
        state.withLock { state in
            var total = 0
            state.units.forEach { total += $1.samples }
            return total
        }
    }

    enum Admission: Equatable {
        /// Admitted before; it brought this many samples last time.
        case known(previousSamples: Int)
        case new
        case refused(reason: DropReason)
    }

    /// Admits a unit with the first `samples` samples of this scrape, or says why
    /// not. `values` are its labels (but `le` and `quantile`), needed when
    /// `valuesPerLabel` is set; `family` is its family's name.
    ///
    /// `now` is the scrape's start in ticks, `refreshBefore` that less `valueRefresh`
    /// (`refreshTime(for:)`): a scrape's instants are reckoned once.
    func admit(key: UnitKey, family: UnsafeBufferPointer<UInt8>, values: [ValueKey], samplesSoFar: Int,
               reservedRemaining: Int, samples: Int, now: Ticks, refreshBefore: Ticks) -> Admission {
        let family = BorrowedBytes(bytes: family)
        return state.withLock { state in
            if let slot = state.units.slot(of: key) {
                let (previous, touch) = state.units.update(slot: slot) { unit in
                    let touch = unit.valuesSeen <= refreshBefore
                    defer {
                        // A slower scrape that began earlier never moves a time back.
                        unit.lastSeen = max(unit.lastSeen, now)
                        unit.samples = samples
                        if touch { unit.valuesSeen = max(unit.valuesSeen, now) }
                    }
                    return (unit.samples, touch)
                }
                if touch { touchValues(&state, values, now: now) }
                return .known(previousSamples: previous)
            }
            if let limit = limits.sampleLimit, samplesSoFar + reservedRemaining >= limit {
                return .refused(reason: .sampleLimit)
            }
            let known = knownNumber(of: family, in: &state)
            if let limit = limits.seriesPerMetric, known.map({ state.perFamily[$0] }) ?? 0 >= limit {
                return .refused(reason: .seriesLimit)
            }
            if let limit = limits.valuesPerLabel {
                for value in values where state.values[value] == nil && state.perLabel[value.label, default: 0] >= limit {
                    return .refused(reason: .labelValueLimit)
                }
            }
            // A family gets a number with its first admitted unit, and gives it back with
            // its last (a refused family's name is never kept).
            let familyNumber = known ?? newNumber(for: family, in: &state)
            state.units.insert(key, Unit(family: familyNumber, lastSeen: now, samples: samples, valuesSeen: now))
            state.perFamily[familyNumber] += 1
            touchValues(&state, values, now: now)
            return .new
        }
    }

    /// A family's number, if it has admitted units.
    private func knownNumber(of family: BorrowedBytes, in state: inout State) -> Int? {
        if let last = state.lastFamily, state.families[last].bytes.withUnsafeBufferPointer({ ExpositionTokens.equal($0, family.bytes) }) {
            return last
        }
        guard let number = state.familyNumbers[ByteKey(copying: family.bytes)] else { return nil }
        state.lastFamily = number
        return number
    }

    private func newNumber(for family: BorrowedBytes, in state: inout State) -> Int {
        let name = ByteKey(copying: family.bytes)
        let number: Int
        if let free = state.freeFamilyNumbers.popLast() {
            number = free
            state.families[number] = name
        } else {
            number = state.families.count
            state.families.append(name)
            state.perFamily.append(0)
        }
        state.familyNumbers[name] = number
        state.lastFamily = number
        return number
    }

    /// Counts `count` more samples of a unit admitted earlier in this scrape.
    func countSample(_ key: UnitKey, count: Int = 1) {
        state.withLock { state in
            guard let slot = state.units.slot(of: key) else { return }
            state.units.update(slot: slot) { $0.samples += count }
        }
    }

    private func touchValues(_ state: inout State, _ values: [ValueKey], now: Ticks) {
        guard limits.valuesPerLabel != nil else { return }
        for value in values {
            if let slot = state.values.slot(of: value) {
                state.values.update(slot: slot) { $0 = max($0, now) }
            } else {
                state.values.insert(value, now)
                state.perLabel[value.label, default: 0] += 1
            }
        }
    }

    /// Before a known unit marks its values seen again (see `valueRefresh`).
    func refreshTime(for now: Ticks) -> Ticks {
        now - valueRefresh
    }

    /// Forgets units and values idle for longer than the timeout, at most once a
    /// second: called as a scrape begins.
    func expireIfDue(now: ContinuousClock.Instant) {
        state.withLock { expireIfDue(&$0, now: now) }
    }

    private func expireIfDue(_ state: inout State, now: ContinuousClock.Instant) {
        guard now - state.lastExpiry >= .seconds(1) else { return }
        state.lastExpiry = now
        let cutoff = ticks(now) - Self.nanoseconds(limits.idleTimeout)
        var idleUnits: [(UnitKey, Int)] = []
        state.units.forEach { key, unit in
            if unit.lastSeen < cutoff { idleUnits.append((key, unit.family)) }
        }
        for (key, family) in idleUnits {
            state.units.remove(key)
            state.perFamily[family] -= 1
            if state.perFamily[family] == 0 {
                state.familyNumbers[state.families[family]] = nil
                state.families[family] = ByteKey([])
                state.freeFamilyNumbers.append(family)
                if state.lastFamily == family { state.lastFamily = nil }
            }
        }
        var idleValues: [ValueKey] = []
        state.values.forEach { key, seen in
            if seen < cutoff - valueRefresh { idleValues.append(key) }
        }
        for key in idleValues {
            state.values.remove(key)
            let left = state.perLabel[key.label, default: 1] - 1
            state.perLabel[key.label] = left > 0 ? left : nil
        }
    }
}

extension SeriesTracker.UnitKey: HashedKey {
    var slotBits: UInt64 { low }
    static var vacant: Self { Self(SeriesFingerprint()) }
}

extension SeriesTracker.ValueKey: HashedKey {
    var slotBits: UInt64 { (label &* 0x9E37_79B9_7F4A_7C15 ^ value).slotBits }
    static var vacant: Self { Self(label: 0, value: 0) }
}

/// The caller's bytes, read (never kept) while the tracker's lock is held: what tells
/// region checking that they do not join the tracker's state.
private struct BorrowedBytes: @unchecked Sendable {
    let bytes: UnsafeBufferPointer<UInt8>
}
