import Synchronization

/// Remembers which series were admitted, across scrapes, so that admission is stable:
/// a series admitted once stays admitted while it keeps appearing; only new series
/// beyond a limit are refused. A histogram or summary (its buckets or quantiles,
/// `_sum`, `_count`, `_created`) is one unit: the family name and the labels without
/// `le` and `quantile`.
///
/// Memory: per admitted unit a record (its key, family number, times, sample count
/// and generation: 56 bytes) and a 24-byte entry in a table at most half full, plus
/// a 16-byte key and a last-seen time per admitted distinct label value when
/// `valuesPerLabel` is set. Shared by the scrapes of one policy;
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
        var key: UnitKey
        /// Its family's number in `State.families`; -1 for a free record.
        var family: Int
        var lastSeen: Ticks
        var samples: Int
        /// When its label values were last marked seen (see `valueRefresh`).
        var valuesSeen: Ticks
        /// Bumped each time the record is given to another unit, so that a scrape's
        /// mark for the record's earlier unit (`ScrapeUnits`) does not count for it.
        var generation: UInt32
    }

    struct State {
        /// Unit numbers (places in `units`) by key.
        var numbers = HashedKeyTable<UnitKey, Int>(placeholder: -1)
        /// The admitted units by number, numbered as they were first admitted: a steady
        /// scrape meets them in that order, so its reads move through memory in one
        /// direction instead of probing a table at random.
        var units: [Unit] = []
        /// Records of forgotten units, to give again.
        var freeUnitNumbers: [Int] = []
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
        /// Units admitted since the tracker was made: a key found absent stays absent
        /// while this has not moved (see `UnitHint`).
        var admissions: UInt64 = 0
    }

    /// Tells trackers apart in `UnitHint`s: numbered as they are made.
    let identity: UInt64
    private static let identities = Atomic<UInt64>(0)

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
        identity = Self.identities.wrappingAdd(1, ordering: .relaxed).newValue
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

    public var admittedUnits: Int { state.withLock { $0.numbers.count } }

    /// Samples expected from units admitted before this scrape: the reservation that
    /// keeps `sampleLimit` from letting a new series take an old one's place.
    func reservedSamples() -> Int {
        state.withLock { state in
            var total = 0
            for unit in state.units where unit.family >= 0 { total += unit.samples }
            return total
        }
    }

    /// Admits `samples` samples of the unit `key` (a protobuf histogram is several at
    /// once) for a scrape, whose side of admission `scrape` holds; `samplesSoFar` is
    /// what the scrape wrote. A unit's first samples in a scrape decide: known units
    /// stay admitted, new ones are admitted within the limits; its later samples follow
    /// that (a later sample of a refused unit is refused as `unit_refused`). `values`
    /// are its labels (but `le` and `quantile`), needed when `valuesPerLabel` is set;
    /// `family` is its family's name.
    ///
    /// `unitHint` is what the last admission of this key found (see `UnitHint`), set
    /// to what this one finds: the unit's number, checked against the unit's key
    /// before use, or that the key was not admitted while no unit has been admitted
    /// since. Either spares a probe of the table of units.
    func admit(_ key: UnitKey, family: UnsafeBufferPointer<UInt8>, values: [ValueKey], samplesSoFar: Int, samples: Int,
               scrape: inout ScrapeUnits, unitHint: inout UnitHint) -> ScrapeAdmission.Verdict {
        if scrape.refusedAny(key) { return .refused(.unitRefused) }
        let family = BorrowedBytes(bytes: family)
        let hint = unitHint
        var found = UnitHint.unknown
        defer { unitHint = found }
        return state.withLock { state in
            let known: Int?
            if let number = hint.number(for: key, tracker: identity), number < state.units.count,
                state.units[number].family >= 0,
                state.units[number].key == key {
                known = number
            } else if hint.absentAfter(for: key, tracker: identity) == state.admissions {
                known = nil
            } else {
                known = state.numbers.slot(of: key).map { state.numbers.value(slot: $0) }
            }
            if let number = known {
                found = UnitHint(key: key, tracker: identity, number: number)
                let mark = state.units[number].generation &+ 1
                if scrape.mark(of: number) == mark {
                    state.units[number].samples += samples
                    return .admitted
                }
                scrape.setMark(mark, of: number)
                let now = scrape.now
                let previous = state.units[number].samples
                let touch = state.units[number].valuesSeen <= scrape.refreshBefore
                // A slower scrape that began earlier never moves a time back.
                state.units[number].lastSeen = max(state.units[number].lastSeen, now)
                state.units[number].samples = samples
                if touch {
                    state.units[number].valuesSeen = max(state.units[number].valuesSeen, now)
                    touchValues(&state, values, now: now)
                }
                // Its samples were reserved; they are counted as they pass now.
                scrape.reservedRemaining = max(0, scrape.reservedRemaining - previous)
                return .admitted
            }
            // A new unit whose first sample would pass the limit is refused; its last
            // one must not either.
            if let reason = refusal(family: family, values: values, samplesSoFar: samplesSoFar + samples - 1,
                                    reservedRemaining: scrape.reservedRemaining, in: &state) {
                scrape.refuse(key)
                found = UnitHint(key: key, tracker: identity, absentAfter: state.admissions)
                return .refused(reason)
            }
            // A family gets a number with its first admitted unit, and gives it back with
            // its last (a refused family's name is never kept).
            let familyNumber = knownNumber(of: family, in: &state) ?? newNumber(for: family, in: &state)
            let now = scrape.now
            let number: Int
            if let free = state.freeUnitNumbers.popLast() {
                number = free
                // Never `UInt32.max`: a scrape's mark is the generation + 1, and 0 is "not met".
                let old = state.units[number].generation
                let generation = old == UInt32.max - 1 ? 0 : old + 1
                state.units[number] = Unit(key: key, family: familyNumber, lastSeen: now, samples: samples,
                                           valuesSeen: now, generation: generation)
            } else {
                number = state.units.count
                state.units.append(Unit(key: key, family: familyNumber, lastSeen: now, samples: samples, valuesSeen: now,
                                        generation: 0))
            }
            state.numbers.insert(key, number)
            state.admissions += 1
            found = UnitHint(key: key, tracker: identity, number: number)
            scrape.setMark(state.units[number].generation &+ 1, of: number)
            state.perFamily[familyNumber] += 1
            touchValues(&state, values, now: now)
            return .admitted
        }
    }

    /// Why a new unit may not be admitted, if it may not.
    private func refusal(family: BorrowedBytes, values: [ValueKey], samplesSoFar: Int, reservedRemaining: Int,
                         in state: inout State) -> DropReason? {
        if let limit = limits.sampleLimit, samplesSoFar + reservedRemaining >= limit {
            return .sampleLimit
        }
        if let limit = limits.seriesPerMetric, knownNumber(of: family, in: &state).map({ state.perFamily[$0] }) ?? 0 >= limit {
            return .seriesLimit
        }
        if let limit = limits.valuesPerLabel {
            for value in values where state.values[value] == nil && state.perLabel[value.label, default: 0] >= limit {
                return .labelValueLimit
            }
        }
        return nil
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
        for number in state.units.indices where state.units[number].family >= 0 && state.units[number].lastSeen < cutoff {
            let family = state.units[number].family
            state.numbers.remove(state.units[number].key)
            state.units[number].family = -1
            state.freeUnitNumbers.append(number)
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
