// The fast path's view of a plain sample after relabel rules that need the whole label
// set (see StreamingFilter.filterRelabeledPlainSample).

/// A plain sample's labels as relabeling and the PII rules left them (`RelabelLabels`,
/// `__name__` among them), as the structure check, the limits, admission and the memo
/// read them and as a changed line is written: the full path's label list, without
/// the copies.
struct RelabeledLabels: StructureLabels {
    let labels: RelabelLabels

    /// Each label but `__name__`, name and value; `excludingBuckets` leaves out `le`
    /// and `quantile` too.
    func forEachLabel(excludingBuckets: Bool, _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Void) {
        labels.bytes.withUnsafeBufferPointer { buffer in
            for slot in labels.slots {
                let name = UnsafeBufferPointer(rebasing: buffer[slot.name])
                if ExpositionTokens.equal(name, "__name__") { continue }
                if excludingBuckets, ExpositionTokens.equal(name, "le") || ExpositionTokens.equal(name, "quantile") { continue }
                body(name, UnsafeBufferPointer(rebasing: buffer[slot.value]))
            }
        }
    }

    func fingerprint(name: UnsafeBufferPointer<UInt8>, excludingBuckets: Bool) -> SeriesFingerprint {
        var fingerprint = SeriesFingerprint()
        LabelSet.metricNameLabel.withUnsafeBufferPointer { fingerprint.add($0, name) }
        forEachLabel(excludingBuckets: excludingBuckets) { fingerprint.add($0, $1) }
        return fingerprint
    }

    func number(of name: StaticString, canonical: Bool) -> Double? {
        var number: Double?
        forEachLabel(excludingBuckets: false) { labelName, value in
            guard number == nil, ExpositionTokens.equal(labelName, name) else { return }
            number = canonical ? ExpositionStructure.canonicalNumber(value) : ExpositionStructure.number(value)
        }
        return number
    }

    func contains(_ name: [UInt8]) -> Bool {
        name != LabelSet.metricNameLabel && name.withUnsafeBufferPointer { labels.index(of: $0) } != nil
    }

    /// Labels but `__name__`.
    var count: Int { labels.slots.count - (labels.metricName == nil ? 0 : 1) }

    /// `label_limit` and `label_value_length_limit` as the full path checks them (the
    /// metric name counts as a value); nil when within both.
    func limitProblem(_ limits: SeriesLimits) -> DropReason? {
        if let limit = limits.labelLimit, count > limit { return .labelLimit }
        if let limit = limits.labelValueLengthLimit, labels.slots.contains(where: { $0.value.count > limit }) {
            return .labelValueLengthLimit
        }
        return nil
    }

    /// The series part as the full path writes it (`ExpositionWriter.writeSeries`):
    /// the name, then the labels in name order; a name that is not a legacy one
    /// quoted (a metric name inside the braces).
    func writeSeriesPart(name: UnsafeBufferPointer<UInt8>, into output: inout [UInt8]) {
        let plainName = LabelNames.isValidMetricName(name)
        var opened = false
        if plainName {
            output.append(contentsOf: name)
        } else {
            output.append(contentsOf: "{\"".utf8)
            ExpositionWriter.escape(name, into: &output)
            output.append(UInt8(ascii: "\""))
            opened = true
        }
        labels.bytes.withUnsafeBufferPointer { buffer in
            for slot in labels.slots {
                let labelName = UnsafeBufferPointer(rebasing: buffer[slot.name])
                if ExpositionTokens.equal(labelName, "__name__") { continue }
                output.append(opened ? UInt8(ascii: ",") : UInt8(ascii: "{"))
                opened = true
                if labels.isPlainLabel(slot) {
                    // `name="value"` as the line has it: nothing to quote or escape.
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[slot.name.lowerBound...slot.value.upperBound]))
                    continue
                }
                if LabelNames.isValid(labelName) {
                    output.append(contentsOf: labelName)
                } else {
                    output.append(UInt8(ascii: "\""))
                    ExpositionWriter.escape(labelName, into: &output)
                    output.append(UInt8(ascii: "\""))
                }
                output.append(contentsOf: "=\"".utf8)
                ExpositionWriter.escape(UnsafeBufferPointer(rebasing: buffer[slot.value]), into: &output)
                output.append(UInt8(ascii: "\""))
            }
        }
        if opened { output.append(UInt8(ascii: "}")) }
    }
}

extension RelabeledLabels: MemoLabelSource {
    func forEachPresentLabel(_ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Void) {
        forEachLabel(excludingBuckets: false, body)
    }

    func forEachUnitValue(_ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Void) {
        forEachLabel(excludingBuckets: true, body)
    }
}
