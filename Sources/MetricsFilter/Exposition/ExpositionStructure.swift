#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps the output valid as a whole, not only line by line, for a strict parser:
/// - metadata: one HELP/TYPE/UNIT per family, before its samples, a UNIT that is the
///   name's suffix (and none for info or stateset);
/// - OpenMetrics families: contiguous, never reopened, sample names allowed by the
///   type, no name that another family's type already claims (`a_created` after a
///   counter `a`, or before it), `le`/`quantile`/stateset labels and values as the
///   type requires,
///   counter-like values neither NaN nor negative, exemplars only where allowed;
/// - series: a label set's samples contiguous, timestamps rising;
/// - histograms: each group (one label set without `le`) is held back until it ends
///   and passed on only if its buckets are ordered, end in `+Inf`, rise, and agree
///   with `_count`; otherwise it is dropped whole.
/// Memory: one histogram group, a bit per series the memo numbered and a fingerprint per
/// other series (`WrittenSeries`), and per family its name and
/// the sample names its type claims (at most five). Long (about 400 lines) because
/// these rules read one shared state (the current family and series); the rules that
/// need none are apart: `ClaimedNames`, `HistogramGroup`, `SampleValueRules`.
struct ExpositionStructure {
    enum Verdict {
        /// Written (or held back to be); `exemplarRemoved` when its exemplar could
        /// not stand on this sample and was left out.
        case write(exemplarRemoved: Bool = false)
        case drop(reason: DropReason)
    }

    let format: ExpositionFormat

    // The current family (OpenMetrics) and what it has seen.
    private var family: [UInt8]?
    private var familyType: MetricType = .unknown
    private var familySawSample = false
    private var familyMetadata: Set<String> = []
    private var closedFamilies: Set<ByteKey> = []
    private var claimedNames = ClaimedNames()
    /// The current family's TYPE claims a name an earlier family claims: its lines
    /// are dropped.
    private var familyClashes = false
    private var groupsInFamily: Set<SeriesFingerprint> = []
    private var currentGroup: SeriesFingerprint?

    // Text format: metadata per name.
    private var textMetadata: Set<ByteKey> = []
    private var textSampled: Set<ByteKey> = []
    private var textTypes: [ByteKey: MetricType] = [:]
    /// The last sample name and the label its type requires: consecutive samples
    /// mostly share a name, so the lookups above run once per name, not per sample.
    private var lastTextName: [UInt8]?
    private var lastTextRequirement: TextRequirement?

    /// The label a text-format sample must carry as a number, by its TYPE.
    private enum TextRequirement {
        /// A histogram's `_bucket`.
        case le
        /// A summary's quantiles.
        case quantile

        var label: StaticString { self == .le ? "le" : "quantile" }
        var dropReason: DropReason { self == .le ? .invalidLe : .invalidQuantile }
    }

    // Series order.
    private var seriesSeen: WrittenSeries
    private let numbering: SeriesNumbering?
    private var lastSeries: SeriesFingerprint?
    private var lastTimestamp: Double?
    private var lastHadTimestamp = false

    // The histogram group being held back.
    private var pending: [UInt8] = []
    private var pendingGroup: HistogramGroup?

    /// - Parameters:
    ///   - expectedSeries: the series the scrape will likely write (what the last
    ///     scrape through its memo wrote), made room for in the duplicate check up front.
    ///   - numbering: the memo's series numbers: the check is a bit for a series
    ///     numbered, its fingerprint for the rest.
    init(format: ExpositionFormat, expectedSeries: Int = 0, numbering: SeriesNumbering? = nil) {
        self.format = format
        self.numbering = numbering
        let numbered = numbering?.count ?? 0
        seriesSeen = WrittenSeries(numbered: numbered, expectedOthers: max(0, expectedSeries - numbered))
    }

    /// Bytes held for the rest of the scrape: the series seen and the group held back.
    var retainedBytes: Int { seriesSeen.retainedBytes + pending.capacity }

    // MARK: Metadata

    mutating func metadata(_ line: ExpositionLine, into output: inout [UInt8]) -> Verdict {
        let name: [UInt8]
        let kind: String
        switch line {
        case .help(let value, _): name = value; kind = "HELP"
        case .type(let value, _): name = value; kind = "TYPE"
        case .unit(let value, _): name = value; kind = "UNIT"
        default: return .drop(reason: .notMetadata)
        }
        if format == .text {
            let key = ByteKey(Array(kind.utf8) + [0] + name)
            guard !textMetadata.contains(key) else { return .drop(reason: .repeatedMetadata) }
            if kind == "TYPE" {
                guard !textSampled.contains(ByteKey(name)) else { return .drop(reason: .metadataAfterSamples) }
                if case .type(_, let type) = line { textTypes[ByteKey(name)] = type }
                lastTextName = nil
            }
            textMetadata.insert(key)
            return .write()
        }
        if case .unit(_, let unit) = line, !Self.isUnitSuffix(unit, of: name) {
            // Checked before a new family starts: a dropped line must not close the
            // family whose metadata is already out.
            return .drop(reason: .unitMismatch)
        }
        if name != family {
            guard !closedFamilies.contains(ByteKey(name)) else { return .drop(reason: .familyReopened) }
            // A metadata line of another name always starts a family. If a family
            // claims the name (`# TYPE a_created gauge` after a counter `a`), the new
            // family clashes and its lines are dropped, samples too: kept, a gauge
            // `a_created` would read as the counter's creation time.
            startFamily(name, into: &output)
        }
        if familyClashes {
            // Its type still routes its samples here, to be dropped with it.
            if case .type(_, let type) = line { familyType = type }
            return .drop(reason: .clashingName)
        }
        guard !familySawSample else { return .drop(reason: .metadataAfterSamples) }
        guard familyMetadata.insert(kind).inserted else { return .drop(reason: .repeatedMetadata) }
        switch line {
        case .type(_, let type):
            if type == .info || type == .stateset, familyMetadata.contains("UNIT") {
                return .drop(reason: .unitForType)
            }
            familyType = type
            guard claimedNames.claimSampleNames(of: name, type: type) else {
                familyClashes = true
                return .drop(reason: .clashingName)
            }
        case .unit:
            if familyType == .info || familyType == .stateset {
                familyMetadata.remove("UNIT")
                return .drop(reason: .unitForType)
            }
        default:
            break
        }
        return .write()
    }

    /// Whether `unit` is the metric name's suffix after an underscore, as OpenMetrics
    /// requires of a UNIT.
    private static func isUnitSuffix(_ unit: [UInt8], of name: [UInt8]) -> Bool {
        !unit.isEmpty && name.count > unit.count + 1 && name.suffix(unit.count).elementsEqual(unit)
            && name[name.count - unit.count - 1] == UInt8(ascii: "_")
    }

    // MARK: Samples

    /// Writes a sample's line (with the newline), with or without its exemplar, at the
    /// end of the buffer given.
    typealias Render = (_ withExemplar: Bool, _ into: inout [UInt8]) -> Void

    /// Decides on a sample the filter is about to write. `render` is called once, and
    /// only for a sample that is written or held back.
    mutating func sample(name: [UInt8], labels: [Label], value: [UInt8], timestamp: [UInt8]?, hasExemplar: Bool,
                         rewritten: Bool, render: Render, into output: inout [UInt8]) -> Verdict {
        let time = timestamp.flatMap { Self.number($0) }
        return name.withUnsafeBufferPointer { name in
            sample(name: name, labels: labels, value: Self.number(value), time: time, hasTimestamp: timestamp != nil,
                   hasExemplar: hasExemplar, rewritten: rewritten, render: render, into: &output)
        }
    }

    /// The same for a sample read in place: its name, its labels through
    /// `StructureLabels`, its value and timestamp as numbers (nil: not one).
    /// `memoEntry`: the memo entry a replayed sample comes from, whose series' number
    /// the memo keeps.
    mutating func sample<Labels: StructureLabels>(name: UnsafeBufferPointer<UInt8>, labels: Labels, value: Double?,
                                                  time: Double?, hasTimestamp: Bool, hasExemplar: Bool, rewritten: Bool,
                                                  memoEntry: Int32? = nil, render: Render,
                                                  into output: inout [UInt8]) -> Verdict {
        let series = labels.fingerprint(name: name, excludingBuckets: false)
        let number = numbering?.number(for: series, entry: memoEntry)
        if format == .text {
            let verdict = textSample(name: name, series: series, number: number, time: time, hasTimestamp: hasTimestamp) {
                labels.number(of: $0, canonical: false)
            }
            if case .write = verdict { render(hasExemplar, &output) }
            return verdict
        }
        if let verdict = checkOrder(series, number: number, time: time, hasTimestamp: hasTimestamp) { return verdict }
        // Which family: the current one if its type allows this name, else a new,
        // untyped family of this exact name.
        let suffix: String
        let familyName: [UInt8]
        if let family, let allowed = Self.suffix(of: name, family: family, type: familyType) {
            suffix = allowed
            familyName = family
        } else {
            let key = ByteKey(copying: name)
            guard !closedFamilies.contains(key) else { return .drop(reason: .familyReopened) }
            if let family, family == key.bytes { return .drop(reason: .nameNotAllowedForType) }
            // A name another family claims (`a_sum` after a summary `a`) starts no
            // family; the current one goes on.
            guard !claimedNames.contains(key) else { return .drop(reason: .clashingName) }
            startFamily(key.bytes, into: &output)
            familyType = .unknown
            suffix = ""
            familyName = key.bytes
        }
        if familyClashes { return .drop(reason: .clashingName) }
        familySawSample = true
        // An exemplar stands only on a counter's `_total` and a histogram's `_bucket`;
        // elsewhere the sample is kept without it.
        let keepExemplar = hasExemplar && ((familyType == .counter && suffix == "_total")
            || ((familyType == .histogram || familyType == .gaugehistogram) && suffix == "_bucket"))
        let exemplarRemoved = hasExemplar && !keepExemplar
        if let reason = Self.valueProblem(type: familyType, suffix: suffix, value: value, labels: labels, family: familyName) {
            return .drop(reason: reason)
        }
        // Grouping: one label set's samples stay together within the family.
        let group = familyName.withUnsafeBufferPointer { labels.fingerprint(name: $0, excludingBuckets: true) }
        if group != currentGroup {
            flushGroup(into: &output)
            guard groupsInFamily.insert(group).inserted else { return .drop(reason: .groupReappears) }
            currentGroup = group
        }
        commit(series, number: number, time: time, hasTimestamp: hasTimestamp)
        if familyType == .histogram || familyType == .gaugehistogram {
            if pendingGroup == nil { pendingGroup = HistogramGroup(gauge: familyType == .gaugehistogram) }
            let le = labels.number(of: "le", canonical: false)
            pendingGroup?.add(suffix: suffix, le: le, value: value, rewritten: rewritten || exemplarRemoved)
            render(keepExemplar, &pending)
            return .write(exemplarRemoved: exemplarRemoved)  // held back: written when the group ends
        }
        render(keepExemplar, &output)
        return .write(exemplarRemoved: exemplarRemoved)
    }

    /// The body ended: the last histogram group is decided.
    mutating func finish(into output: inout [UInt8]) {
        flushGroup(into: &output)
    }

    struct DroppedGroup {
        var reason: DropReason
        var family: [UInt8]
        var samples: Int
        var rewritten: Int
    }

    /// Histogram groups dropped since last asked.
    private var droppedGroups: [DroppedGroup] = []

    var hasDroppedGroups: Bool { !droppedGroups.isEmpty }

    mutating func takeDroppedGroups() -> [DroppedGroup] {
        defer { droppedGroups.removeAll() }
        return droppedGroups
    }

    // MARK: Helpers

    /// Whether a sample may follow what was written so far; changes nothing (a
    /// sample dropped later must not move the order state). `number`: the series'
    /// number in the memo, if it has one (see `WrittenSeries`).
    private func checkOrder(_ series: SeriesFingerprint, number: Int32?, time: Double?, hasTimestamp: Bool) -> Verdict? {
        if series == lastSeries {
            // The same series again: only with rising timestamps, on both samples.
            guard hasTimestamp, let time, lastHadTimestamp, let previous = lastTimestamp, time > previous
            else {
                return .drop(reason: .duplicate)
            }
            return nil
        }
        guard !seriesSeen.contains(series, number: number) else { return .drop(reason: .duplicate) }
        return nil
    }

    /// Records a sample that is written (or held back to be).
    private mutating func commit(_ series: SeriesFingerprint, number: Int32?, time: Double?, hasTimestamp: Bool) {
        _ = seriesSeen.insert(series, number: number)
        lastSeries = series
        lastTimestamp = time
        lastHadTimestamp = hasTimestamp
    }

    /// Decides on a text-format sample: its order, and the label its TYPE requires
    /// (`labelNumber` gives a label's value as a number, nil when absent or not one).
    /// The caller writes it when the verdict is `.write`.
    private mutating func textSample(name: UnsafeBufferPointer<UInt8>, series: SeriesFingerprint, number: Int32?, time: Double?,
                                     hasTimestamp: Bool, labelNumber: (StaticString) -> Double?) -> Verdict {
        if let verdict = checkOrder(series, number: number, time: time, hasTimestamp: hasTimestamp) { return verdict }
        if let required = textRequirement(for: name), labelNumber(required.label) == nil {
            return .drop(reason: required.dropReason)
        }
        commit(series, number: number, time: time, hasTimestamp: hasTimestamp)
        return .write()
    }

    /// The label a text-format sample of this name must carry. Notes the name as
    /// sampled: a TYPE for it may no longer follow. Consecutive samples mostly share a
    /// name, so the lookups run once per run of a name.
    private mutating func textRequirement(for name: UnsafeBufferPointer<UInt8>) -> TextRequirement? {
        if let lastTextName, lastTextName.count == name.count,
            name.isEmpty || lastTextName.withUnsafeBufferPointer({ memcmp($0.baseAddress!, name.baseAddress!, name.count) == 0 }) {
            return lastTextRequirement
        }
        let key = ByteKey(copying: name)
        // The family a TYPE line named: the name itself (a summary's quantiles) or the
        // name less a suffix (a histogram's buckets, `_sum`, `_count`).
        let base = Self.textFamilyBase(key.bytes)
        if textTypes[key] == .summary {
            lastTextRequirement = .quantile
        } else if let base, key.bytes.count - base.count == 7, textTypes[ByteKey(copying: base)] == .histogram {
            lastTextRequirement = .le  // `_bucket` is the only 7-byte suffix
        } else {
            lastTextRequirement = nil
        }
        textSampled.insert(key)
        if let base { textSampled.insert(ByteKey(copying: base)) }
        lastTextName = key.bytes
        return lastTextRequirement
    }

    /// The name without a `_bucket`, `_sum` or `_count` suffix, if it has one.
    private static func textFamilyBase(_ name: [UInt8]) -> ArraySlice<UInt8>? {
        for suffix in ["_bucket", "_sum", "_count"] where name.count > suffix.utf8.count && name.suffix(suffix.utf8.count).elementsEqual(suffix.utf8) {
            return name.dropLast(suffix.utf8.count)
        }
        return nil
    }

    private mutating func startFamily(_ name: [UInt8], into output: inout [UInt8]) {
        flushGroup(into: &output)
        if let family { closedFamilies.insert(ByteKey(family)) }
        familyClashes = !claimedNames.claimFamily(name)
        family = name
        familyType = .unknown
        familySawSample = false
        familyMetadata = []
        groupsInFamily = []
        currentGroup = nil
    }

    private mutating func flushGroup(into output: inout [UInt8]) {
        guard let group = pendingGroup else { return }
        if let problem = group.problem {
            droppedGroups.append(DroppedGroup(reason: problem, family: family ?? [], samples: group.samples, rewritten: group.rewritten))
        } else {
            output.append(contentsOf: pending)
        }
        pending.removeAll(keepingCapacity: true)
        pendingGroup = nil
    }

    /// The suffix a sample name has in a family of this type, or nil when the type
    /// does not allow the name.
    static func suffix(of name: UnsafeBufferPointer<UInt8>, family: [UInt8], type: MetricType) -> String? {
        guard name.count >= family.count, name.starts(with: family) else { return nil }
        let rest = UnsafeBufferPointer(rebasing: name[family.count...])
        if rest.isEmpty {
            switch type {
            case .gauge, .unknown, .untyped, .stateset, .summary: return ""
            default: return nil
            }
        }
        for candidate in type.sampleSuffixes where ExpositionTokens.equal(rest, candidate) {
            return candidate.description
        }
        return nil
    }

    /// A number as OpenMetrics writes it: `+Inf`/`-Inf`/`NaN` in that case, else a
    /// real number.
    static func canonicalNumber(_ text: UnsafeBufferPointer<UInt8>) -> Double? {
        if text.elementsEqual("+Inf".utf8) || text.elementsEqual("Inf".utf8) { return .infinity }
        if text.elementsEqual("-Inf".utf8) { return -.infinity }
        if text.elementsEqual("NaN".utf8) { return .nan }
        guard text.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-")
            || $0 == UInt8(ascii: ".") || $0 | 0x20 == UInt8(ascii: "e") }) else { return nil }
        return number(text)
    }

    /// The value of a number token the parser accepted, without making a String:
    /// plain integers directly, the rest through `strtod` on a stack buffer.
    static func number(_ text: [UInt8]) -> Double? {
        text.withUnsafeBufferPointer { number($0) }
    }

    static func number(_ text: UnsafeBufferPointer<UInt8>) -> Double? {
        guard let first = text.first else { return nil }
        var digits = text[...]
        var negative = false
        if first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            digits = digits.dropFirst()
        }
        if !digits.isEmpty, digits.count <= 15, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            let value = Double(digits.reduce(0) { $0 * 10 + Int($1 - 0x30) })
            return negative ? -value : value
        }
        if let letter = digits.first, letter | 0x20 == UInt8(ascii: "i") || letter | 0x20 == UInt8(ascii: "n") {
            if ExpositionParser.equalsIgnoringCase(digits, "inf") || ExpositionParser.equalsIgnoringCase(digits, "infinity") {
                return negative ? -.infinity : .infinity
            }
            return ExpositionParser.equalsIgnoringCase(digits, "nan") ? .nan : nil
        }
        guard text.count < 64 else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: text.count + 1) { buffer in
            for (index, byte) in text.enumerated() { buffer[index] = CChar(bitPattern: byte) }
            buffer[text.count] = 0
            var end: UnsafeMutablePointer<CChar>?
            let value = strtod(buffer.baseAddress!, &end)
            return end == buffer.baseAddress! + text.count ? value : nil
        }
    }
}
