// The fast path's view of a plain sample line with its edits (see StreamingFilter).

/// What the name-only relabel rules and the PII rules made of one label of a plain
/// sample.
enum PlainEdit {
    case keep
    case replace(PIIScrubber.Replacement)
    case drop
}

/// A plain sample's labels with their edits, as the structure check, the limits and
/// admission read them and as a changed line is written.
/// Made for each line, from lent positions and edits: it owns nothing, so making it
/// retains nothing; valid while they are lent.
struct PlainLabels: StructureLabels {
    let sample: PlainSample.Lent
    /// One per label; empty when no rule applies (all kept).
    let edits: UnsafeBufferPointer<PlainEdit>
    /// The pass-through path hands the structure check the labels as parsed, where
    /// `a=""` is a label; elsewhere the label set has no empty values.
    let emptyIsPresent: Bool

    func edit(_ index: Int) -> PlainEdit {
        edits.isEmpty ? .keep : edits[index]
    }

    func fingerprint(name: UnsafeBufferPointer<UInt8>, excludingBuckets: Bool) -> SeriesFingerprint {
        var fingerprint = SeriesFingerprint()
        LabelSet.metricNameLabel.withUnsafeBufferPointer { fingerprint.add($0, name) }
        forEachLabel(excludingBuckets: excludingBuckets) { fingerprint.add($0, $1) }
        return fingerprint
    }

    /// Each label as edited (the dropped left out), name and value.
    func forEachLabel(excludingBuckets: Bool, _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Void) {
        for (index, label) in sample.labels.enumerated() {
            let labelName = sample.labelName(label)
            if excludingBuckets, ExpositionTokens.equal(labelName, "le") || ExpositionTokens.equal(labelName, "quantile") { continue }
            switch edit(index) {
            case .keep: body(labelName, sample.labelValue(label))
            case .replace(let value): value.withBytes { body(labelName, $0) }
            case .drop: break
            }
        }
    }

    func number(of name: StaticString, canonical: Bool) -> Double? {
        for (index, label) in sample.labels.enumerated() where ExpositionTokens.equal(sample.labelName(label), name) {
            switch edit(index) {
            case .keep:
                let value = sample.labelValue(label)
                return canonical ? ExpositionStructure.canonicalNumber(value) : ExpositionStructure.number(value)
            case .replace(let value):
                return value.withBytes {
                    canonical ? ExpositionStructure.canonicalNumber($0) : ExpositionStructure.number($0)
                }
            case .drop:
                return nil
            }
        }
        return nil
    }

    func contains(_ name: [UInt8]) -> Bool {
        name.withUnsafeBufferPointer { wanted in
            for (index, label) in sample.labels.enumerated() where ExpositionTokens.equal(sample.labelName(label), wanted) {
                switch edit(index) {
                case .keep: return emptyIsPresent || label.valueEnd > label.valueStart
                case .replace: return true
                case .drop: return false
                }
            }
            return false
        }
    }

    /// `label_limit` and `label_value_length_limit` on the labels as edited (the
    /// metric name counts as a value, as in the label set); nil when within both.
    func limitProblem(_ limits: SeriesLimits) -> DropReason? {
        guard limits.labelLimit != nil || limits.labelValueLengthLimit != nil else { return nil }
        var labels = 0
        var longest = sample.name.count
        for (index, label) in sample.labels.enumerated() {
            let length: Int
            switch edit(index) {
            case .keep: length = label.valueEnd - label.valueStart
            case .replace(let value): length = value.count
            case .drop: length = 0
            }
            if length > 0 { labels += 1 }
            longest = max(longest, length)
        }
        if let limit = limits.labelLimit, labels > limit { return .labelLimit }
        if let limit = limits.labelValueLengthLimit, longest > limit { return .labelValueLengthLimit }
        return nil
    }

    /// The line with its edits: labels in their original order, less the dropped and
    /// the empty ones; the value and timestamp as they were.
    func writeEdited(into output: inout [UInt8]) {
        var counter = ByteCounter()
        writeLine(into: &counter)
        output.append(count: counter.count) { writeLine(into: &$0) }
    }

    private func writeLine<Output: ByteOutput>(into output: inout Output) {
        writeSeriesPart(into: &output)
        output.append(UInt8(ascii: " "))
        output.append(bytes: sample.valueAndTimestamp)
        output.append(0x0A)
    }

    /// The edited line up to its value (the space not included).
    func writeSeriesPart<Output: ByteOutput>(into output: inout Output) {
        output.append(bytes: sample.name)
        var opened = false
        for (index, label) in sample.labels.enumerated() {
            let value: PIIScrubber.Replacement
            switch edit(index) {
            case .drop:
                continue
            case .replace(let replacement):
                value = replacement
            case .keep:
                guard label.valueEnd > label.valueStart else { continue }
                output.append(opened ? UInt8(ascii: ",") : UInt8(ascii: "{"))
                opened = true
                output.append(bytes: UnsafeBufferPointer(rebasing: sample.line[label.nameStart..<(label.valueEnd + 1)]))
                continue
            }
            output.append(opened ? UInt8(ascii: ",") : UInt8(ascii: "{"))
            opened = true
            output.append(bytes: sample.labelName(label))
            output.append(UInt8(ascii: "="))
            output.append(UInt8(ascii: "\""))
            value.withEscapedBytes { output.append(bytes: $0) }
            output.append(UInt8(ascii: "\""))
        }
        if opened { output.append(UInt8(ascii: "}")) }
    }
}

extension PlainLabels: MemoLabelSource {
    func forEachPresentLabel(_ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Void) {
        for (index, label) in sample.labels.enumerated() {
            switch edit(index) {
            case .keep:
                if emptyIsPresent || label.valueEnd > label.valueStart { body(sample.labelName(label), sample.labelValue(label)) }
            case .replace(let value):
                value.withBytes { body(sample.labelName(label), $0) }
            case .drop:
                break
            }
        }
    }

    func forEachUnitValue(_ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Void) {
        forEachLabel(excludingBuckets: true) { name, value in
            if !value.isEmpty { body(name, value) }
        }
    }
}
