#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// One remembered series: the fixed part (`SeriesMemo.Entry`), its bytes in the
// memo's arena (read through `EntryBytes`), the draft the filter fills on a miss, and
// the labels as the structure check reads them on a hit.

extension SeriesMemo {
    /// The fixed part of a remembered series. Its bytes are one block in the arena:
    /// the series part (the key), the bytes written before the value when they differ
    /// from the key, the output name (or, for a drop, the name it is counted under),
    /// the output labels, the PII counts and the admission value keys.
    struct Entry {
        var hash: UInt64 = 0
        /// The output series' fingerprint with its name.
        var series = SeriesFingerprint()
        /// The sum of the output labels' hashes but `le` and `quantile`'s, and theirs:
        /// a fingerprint under any name is that name's plus these.
        var unitSum = SeriesFingerprint()
        var bucketSum = SeriesFingerprint()
        var offset: Int32 = 0
        var keyLength: Int32 = 0
        /// -1: the line is written as it came (the output is the key).
        var outputLength: Int32 = -1
        var nameLength: Int32 = 0
        var labelsLength: Int32 = 0
        var piiCount: Int32 = 0
        var valuesCount: Int32 = 0
        /// The entry whose line followed this one's in the last scrape.
        var next: Int32 = -1
        /// What admission found for the series' unit last time (see
        /// `SeriesTracker.UnitHint`).
        var unitHint = SeriesTracker.UnitHint.unknown
        var lastSeen: UInt32 = 0
        /// Set when the series is dropped before admission.
        var dropReason: DropReason?
        var rewritten = false
        /// The name is the key's first `nameLength` bytes, not stored apart.
        var nameInKey = false
        /// Protobuf: whether the decision took the metric's bucket or quantile into
        /// account (`label_limit` counts one): 0 not at all, 1 without, 2 with.
        var structural: UInt8 = 0
        /// Where the output labels are read: from the key or the output when these
        /// are in the plain form (`name{a="b",...}`, no escapes), else from a list of
        /// their own (`labelsLength` bytes).
        var labelSource = LabelSource.key
        /// A label with an empty value counts as present (the pass-through path's
        /// labels as parsed); elsewhere it is absent, as in a label set.
        var emptyValuesArePresent = false

        enum LabelSource: UInt8 {
            case key, output, list
        }

        static let piiStride = 4
        static let valueStride = 16

        var blockSize: Int {
            Int(keyLength) + Int(max(outputLength, 0)) + (nameInKey ? 0 : Int(nameLength)) + Int(labelsLength)
                + Int(piiCount) * Self.piiStride + Int(valuesCount) * Self.valueStride
        }
    }
}

/// An entry with its bytes, valid until the memo next changes.
struct EntryBytes {
    let entry: SeriesMemo.Entry
    let base: UnsafeRawPointer

    private func slice(_ start: Int, _ count: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: (base + start).assumingMemoryBound(to: UInt8.self), count: count)
    }

    private var outputEnd: Int { Int(entry.keyLength) + Int(max(entry.outputLength, 0)) }
    private var labelsStart: Int { outputEnd + (entry.nameInKey ? 0 : Int(entry.nameLength)) }
    private var piiStart: Int { labelsStart + Int(entry.labelsLength) }
    private var valuesStart: Int { piiStart + Int(entry.piiCount) * SeriesMemo.Entry.piiStride }

    /// The series part as it came.
    var key: UnsafeBufferPointer<UInt8> { slice(0, Int(entry.keyLength)) }
    /// What is written before the value (its space not included).
    var output: UnsafeBufferPointer<UInt8> {
        entry.outputLength < 0 ? key : slice(Int(entry.keyLength), Int(entry.outputLength))
    }
    /// The output name; for a drop, the name the drop is counted under.
    var name: UnsafeBufferPointer<UInt8> { slice(entry.nameInKey ? 0 : outputEnd, Int(entry.nameLength)) }

    /// Each output label, name and value; `body` returns false to stop.
    func forEachLabel(_ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Bool) {
        switch entry.labelSource {
        case .key:
            PlainSample.forEachLabel(ofSeriesPart: key, emptyValuesArePresent: entry.emptyValuesArePresent, body)
            return
        case .output:
            PlainSample.forEachLabel(ofSeriesPart: output, emptyValuesArePresent: entry.emptyValuesArePresent, body)
            return
        case .list:
            break
        }
        var position = labelsStart
        let end = piiStart
        while position < end {
            let nameLength = Int(base.loadUnaligned(fromByteOffset: position, as: UInt32.self))
            let name = slice(position + 4, nameLength)
            position += 4 + nameLength
            let valueLength = Int(base.loadUnaligned(fromByteOffset: position, as: UInt32.self))
            let value = slice(position + 4, valueLength)
            position += 4 + valueLength
            guard body(name, value) else { return }
        }
    }

    /// The PII counts the series' labels added: (index in `PIICounts`, count).
    func forEachPIICount(_ body: (Int, Int) -> Void) {
        for item in 0..<Int(entry.piiCount) {
            let offset = piiStart + item * SeriesMemo.Entry.piiStride
            body(Int(base.loadUnaligned(fromByteOffset: offset, as: UInt16.self)),
                 Int(base.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self)))
        }
    }

    /// The admission value keys of the series' unit labels.
    func forEachValueKey(_ body: (SeriesTracker.ValueKey) -> Void) {
        for item in 0..<Int(entry.valuesCount) {
            let offset = valuesStart + item * SeriesMemo.Entry.valueStride
            body(SeriesTracker.ValueKey(label: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self),
                                        value: base.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)))
        }
    }
}

/// A decision being written down on a miss, in the layout `EntryBytes` reads; kept
/// by the filter between lines so that its buffer is reused.
struct MemoDraft {
    var entry = SeriesMemo.Entry()
    var bytes: [UInt8] = []
    /// Set once the decision is made; a line whose filtering ended otherwise (say a
    /// name the escaping could not write) is not remembered.
    var decided: Bool { madeDecision && !unrememberable }
    private var madeDecision = false
    private var unrememberable = false
    /// For `isPlainSeriesPart`, kept so that the check allocates nothing.
    private var plainCheck = PlainSample()
    private var plainLine: [UInt8] = []

    mutating func start(key: UnsafeBufferPointer<UInt8>) {
        entry = SeriesMemo.Entry()
        entry.keyLength = Int32(key.count)
        bytes.removeAll(keepingCapacity: true)
        bytes.append(contentsOf: key)
        madeDecision = false
        unrememberable = false
    }

    /// The series is dropped before admission, counted under `metric`.
    mutating func drop(_ reason: DropReason, metric: UnsafeBufferPointer<UInt8>, pii: PIICounts.Delta) {
        entry.dropReason = reason
        append(name: metric)
        append(pii)
        madeDecision = true
    }

    /// Which admission value keys an entry keeps.
    enum ValueKeys {
        case none
        /// The labels of the series' unit, with a value (the text formats').
        case unitLabels
        /// These (the protobuf exposition's: every output label).
        case these([SeriesTracker.ValueKey])
    }

    /// The series is written: `writeOutput` writes what goes before the value (nil:
    /// the key as it came), under `name`, with `labels` as the structure check reads
    /// them (kept unless `keepsLabels` is false: the protobuf path reads none), where a
    /// label with an empty value is one when `emptyValuesArePresent` (the labels as
    /// parsed, on the pass-through paths; a label set has none); `valueKeys` as
    /// admission counts label values. `writeOutput` is called here and never kept: it
    /// may reach memory lent only for this call (the plain path's `PlainLabels`).
    mutating func write<Labels: MemoLabelSource>(name: UnsafeBufferPointer<UInt8>, labels: Labels, rewritten: Bool,
                                                 emptyValuesArePresent: Bool, pii: PIICounts.Delta, valueKeys: ValueKeys,
                                                 keepsLabels: Bool = true, writeOutput: ((inout [UInt8]) -> Void)?) {
        entry.rewritten = rewritten
        if let writeOutput {
            let start = bytes.count
            writeOutput(&bytes)
            entry.outputLength = Int32(bytes.count - start)
        }
        append(name: name)
        entry.emptyValuesArePresent = emptyValuesArePresent
        if !keepsLabels {
            entry.labelSource = .list
        } else if !rewritten {
            entry.labelSource = .key
        } else if isPlainSeriesPart(Int(entry.keyLength)..<(Int(entry.keyLength) + Int(entry.outputLength))) {
            entry.labelSource = .output
        } else {
            entry.labelSource = .list
            let labelsStart = bytes.count
            labels.forEachPresentLabel { labelName, value in
                appendLength(labelName.count)
                bytes.append(contentsOf: labelName)
                appendLength(value.count)
                bytes.append(contentsOf: value)
            }
            entry.labelsLength = Int32(bytes.count - labelsStart)
        }
        // The three sums in one walk: a fingerprint is its name's plus its labels'.
        var unitSum = SeriesFingerprint()
        var bucketSum = SeriesFingerprint()
        labels.forEachPresentLabel { labelName, value in
            if ExpositionTokens.equal(labelName, "le") || ExpositionTokens.equal(labelName, "quantile") {
                bucketSum.add(labelName, value)
            } else {
                unitSum.add(labelName, value)
            }
        }
        entry.unitSum = unitSum
        entry.bucketSum = bucketSum
        entry.series = SeriesFingerprint(name: name) &+ unitSum &+ bucketSum
        append(pii)
        switch valueKeys {
        case .none:
            break
        case .unitLabels:
            labels.forEachUnitValue { labelName, value in
                append(SeriesTracker.ValueKey(name: labelName, value: value))
            }
        case .these(let keys):
            for key in keys { append(key) }
        }
        madeDecision = true
    }

    /// Whether written bytes before a value are in the plain form, read as a plain
    /// sample reads them (its labels can then be read from them again).
    private mutating func isPlainSeriesPart(_ range: Range<Int>) -> Bool {
        plainLine.removeAll(keepingCapacity: true)
        plainLine.append(contentsOf: bytes[range])
        plainLine.append(contentsOf: " 0".utf8)
        return plainLine.withUnsafeBytes { plainCheck.read($0, strict: false) } && plainCheck.valueStart == range.count + 1
    }

    /// The name, as a length when the key starts with it.
    private mutating func append(name: UnsafeBufferPointer<UInt8>) {
        entry.nameLength = Int32(name.count)
        entry.nameInKey = name.count <= Int(entry.keyLength)
            && bytes.withUnsafeBufferPointer { ExpositionTokens.equal(UnsafeBufferPointer(rebasing: $0[0..<name.count]), name) }
        if !entry.nameInKey { bytes.append(contentsOf: name) }
    }

    /// Two 16-bit numbers a count; a decision with more (never met: a rule per count
    /// and a handful of labels a line) is not remembered.
    private mutating func append(_ pii: PIICounts.Delta) {
        for (index, count) in pii.changes {
            guard let index = UInt16(exactly: index), let count = UInt16(exactly: count) else {
                unrememberable = true
                return
            }
            withUnsafeBytes(of: index.littleEndian) { bytes.append(contentsOf: $0) }
            withUnsafeBytes(of: count.littleEndian) { bytes.append(contentsOf: $0) }
            entry.piiCount += 1
        }
    }

    private mutating func appendLength(_ length: Int) {
        withUnsafeBytes(of: UInt32(length).littleEndian) { bytes.append(contentsOf: $0) }
    }

    private mutating func append(_ key: SeriesTracker.ValueKey) {
        withUnsafeBytes(of: key.label.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: key.value.littleEndian) { bytes.append(contentsOf: $0) }
        entry.valuesCount += 1
    }
}

/// Labels a decision is written down from: the fast path's `PlainLabels` and the
/// full path's label list.
protocol MemoLabelSource: StructureLabels {
    /// Each label the structure check sees (the name left out): name and value.
    func forEachPresentLabel(_ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Void)
    /// Each label of the series' unit (not `le` nor `quantile`) with a value, as
    /// admission counts them.
    func forEachUnitValue(_ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Void)
}

extension Array: MemoLabelSource where Element == Label {
    func forEachPresentLabel(_ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Void) {
        for label in self {
            label.name.withUnsafeBufferPointer { name in label.value.withUnsafeBufferPointer { body(name, $0) } }
        }
    }

    func forEachUnitValue(_ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Void) {
        for label in self where !label.value.isEmpty && label.name != LabelSet.metricNameLabel
            && !label.name.elementsEqual("le".utf8) && !label.name.elementsEqual("quantile".utf8) {
            label.name.withUnsafeBufferPointer { name in label.value.withUnsafeBufferPointer { body(name, $0) } }
        }
    }
}

/// A remembered series' labels as the structure check reads them: fingerprints from
/// the remembered sums, label values from the remembered list.
struct MemoLabels: StructureLabels {
    let bytes: EntryBytes

    func fingerprint(name: UnsafeBufferPointer<UInt8>, excludingBuckets: Bool) -> SeriesFingerprint {
        if !excludingBuckets, Self.same(name, bytes.name) { return bytes.entry.series }
        let named = SeriesFingerprint(name: name) &+ bytes.entry.unitSum
        return excludingBuckets ? named : named &+ bytes.entry.bucketSum
    }

    func number(of name: StaticString, canonical: Bool) -> Double? {
        var number: Double?
        bytes.forEachLabel { labelName, value in
            guard ExpositionTokens.equal(labelName, name) else { return true }
            number = canonical ? ExpositionStructure.canonicalNumber(value) : ExpositionStructure.number(value)
            return false
        }
        return number
    }

    func contains(_ name: [UInt8]) -> Bool {
        var found = false
        name.withUnsafeBufferPointer { wanted in
            bytes.forEachLabel { labelName, _ in
                found = Self.same(labelName, wanted)
                return !found
            }
        }
        return found
    }

    private static func same(_ lhs: UnsafeBufferPointer<UInt8>, _ rhs: UnsafeBufferPointer<UInt8>) -> Bool {
        guard lhs.count == rhs.count else { return false }
        if lhs.baseAddress == rhs.baseAddress || lhs.isEmpty { return true }
        return memcmp(lhs.baseAddress!, rhs.baseAddress!, lhs.count) == 0
    }
}
