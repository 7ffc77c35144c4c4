/// 128 bits of a label set (two lanes of a multiply-rotate hash, eight bytes a
/// step): what the duplicate check keeps per series instead of the labels themselves.
/// The same fingerprint for the same name and labels in any order (per-label hashes
/// are summed); labels with empty values count as absent, as Prometheus treats them.
struct SeriesFingerprint: Hashable {
    private(set) var high: UInt64 = 0
    private(set) var low: UInt64 = 0

    /// Nothing added yet: add the name with `__name__`, then the labels.
    init() {}

    /// With `excludingBuckets`, `le` and `quantile` are left out (a histogram's group).
    init(name: [UInt8], labels: [Label], excludingBuckets: Bool = false) {
        self = name.withUnsafeBufferPointer { labels.fingerprint(name: $0, excludingBuckets: excludingBuckets) }
    }

    /// The lanes' start values, drawn once per process. Without them the hash could be
    /// run backwards: an app could pick a label value whose fingerprint matches another
    /// series' (to have it dropped as a duplicate, or passed by admission as a unit it
    /// is not). With them it cannot be computed from outside; it is still no
    /// cryptographic hash. Fingerprints never leave the process, so nothing depends on
    /// their values being the same from one run to the next.
    private static let seeds: (first: UInt64, second: UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }()

    /// Adds one label; an empty value is not added.
    mutating func add(_ labelName: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) {
        guard !value.isEmpty else { return }
        var first = Self.seeds.first
        var second = Self.seeds.second
        Self.absorb(labelName, &first, &second)
        Self.absorb(value, &first, &second)
        // Avalanche before summing, so that sums of similar labels do not collide.
        first ^= first >> 33
        first &*= 0xff51_afd7_ed55_8ccd
        first ^= first >> 33
        second ^= second >> 29
        second &*= 0xc4ce_b9fe_1a85_ec53
        second ^= second >> 32
        high &+= first
        low &+= second
    }

    /// Mixes `bytes` into both lanes eight bytes a step, each lane with its own
    /// multipliers and rotations; the length first, so that a name and a value are
    /// told apart from the same bytes split elsewhere.
    @inline(__always) private static func absorb(_ bytes: UnsafeBufferPointer<UInt8>, _ first: inout UInt64, _ second: inout UInt64) {
        @inline(__always) func step(_ word: UInt64, _ first: inout UInt64, _ second: inout UInt64) {
            first = (first ^ (word &* 0xBF58_476D_1CE4_E5B9)).rotated(27) &* 0x94D0_49BB_1331_11EB
            second = (second ^ (word &* 0x9E37_79B9_7F4A_7C15)).rotated(31) &* 0xD6E8_FEB8_6659_FD93
        }
        step(UInt64(bytes.count), &first, &second)
        UnsafeRawBufferPointer(bytes).forEachWord { step($0, &first, &second) }
    }
}

/// The series seen in one scrape, 64 bits of each fingerprint: open addressing over a
/// flat array, at most half full, so 16 bytes a series at worst. The fingerprints are
/// hashes already, so their bits pick the slot; a `Set` would hash them again. Two
/// series in a scrape of a million share 64 bits with a chance of about 3e-8.
struct FingerprintSet {
    private var slots: [UInt64]
    /// 0 marks a free slot; whether 0 itself is a member is kept apart.
    private var containsZero = false
    private(set) var count = 0
    /// 4 MiB of table made room for up front at most; a larger scrape grows it.
    static let maximumExpected = 1 << 18

    /// The table's size in bytes: what this set holds while its scrape is in flight.
    var retainedBytes: Int { slots.count * MemoryLayout<UInt64>.stride }

    /// - Parameter expectedCount: members to make room for up front (the series the
    ///   last scrape through the memo wrote), so the table is not grown, and each time
    ///   copied, as it fills. At most `maximumExpected` are: the table counts in the
    ///   scrape's buffer budget, and the last scrape is only a guess at this one.
    init(expectedCount: Int = 0) {
        var size = 1024
        while size < min(expectedCount, Self.maximumExpected) * 2 { size *= 2 }
        slots = Array(repeating: 0, count: size)
    }

    func contains(_ fingerprint: SeriesFingerprint) -> Bool {
        contains(bits: fingerprint.high)
    }

    mutating func insert(_ fingerprint: SeriesFingerprint) {
        insert(bits: fingerprint.high)
    }

    /// The same for the 64 bits a fingerprint is kept by (`high`), as another key
    /// made of fingerprints has them (`SeriesTracker.UnitKey`).
    func contains(bits value: UInt64) -> Bool {
        if value == 0 { return containsZero }
        let mask = slots.count - 1
        var index = Int(truncatingIfNeeded: value) & mask
        while true {
            let slot = slots[index]
            if slot == value { return true }
            if slot == 0 { return false }
            index = (index + 1) & mask
        }
    }

    mutating func insert(bits value: UInt64) {
        if value == 0 {
            if !containsZero { count += 1 }
            containsZero = true
            return
        }
        if (count + 1) * 2 > slots.count { grow() }
        let mask = slots.count - 1
        var index = Int(truncatingIfNeeded: value) & mask
        while true {
            let slot = slots[index]
            if slot == value { return }
            if slot == 0 {
                slots[index] = value
                count += 1
                return
            }
            index = (index + 1) & mask
        }
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: 0, count: old.count * 2)
        let mask = slots.count - 1
        for value in old where value != 0 {
            var index = Int(truncatingIfNeeded: value) & mask
            while slots[index] != 0 { index = (index + 1) & mask }
            slots[index] = value
        }
    }
}

extension SeriesFingerprint {
    /// The fingerprint of a name alone (`__name__` and the name): a label set's
    /// fingerprint is this plus the sum of its labels' (see `SeriesMemo`).
    init(name: UnsafeBufferPointer<UInt8>) {
        self.init()
        LabelSet.metricNameLabel.withUnsafeBufferPointer { add($0, name) }
    }

    /// Sums of per-label hashes add and subtract as the labels they stand for.
    static func &+ (lhs: SeriesFingerprint, rhs: SeriesFingerprint) -> SeriesFingerprint {
        var sum = lhs
        sum.high &+= rhs.high
        sum.low &+= rhs.low
        return sum
    }

    static func &- (lhs: SeriesFingerprint, rhs: SeriesFingerprint) -> SeriesFingerprint {
        var difference = lhs
        difference.high &-= rhs.high
        difference.low &-= rhs.low
        return difference
    }
}
