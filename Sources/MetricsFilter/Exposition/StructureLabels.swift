/// A sample's labels as `ExpositionStructure` reads them, whether they are a list of
/// copies (the full path) or positions in the line with the PII rules' edits (the
/// fast path).
protocol StructureLabels {
    /// The fingerprint of `name` with these labels (empty values left out); with
    /// `excludingBuckets`, `le` and `quantile` are left out too.
    func fingerprint(name: UnsafeBufferPointer<UInt8>, excludingBuckets: Bool) -> SeriesFingerprint

    /// The value of the label `name` as a number; nil when it is absent or not a
    /// number. `canonical`: only as OpenMetrics writes numbers (`+Inf`, `NaN`, ...).
    func number(of name: StaticString, canonical: Bool) -> Double?

    /// Whether there is a label called `name`.
    func contains(_ name: [UInt8]) -> Bool
}

extension Array: StructureLabels where Element == Label {
    func fingerprint(name: UnsafeBufferPointer<UInt8>, excludingBuckets: Bool) -> SeriesFingerprint {
        var fingerprint = SeriesFingerprint()
        LabelSet.metricNameLabel.withUnsafeBufferPointer { fingerprint.add($0, name) }
        for label in self {
            if excludingBuckets, label.name.elementsEqual("le".utf8) || label.name.elementsEqual("quantile".utf8) { continue }
            label.name.withUnsafeBufferPointer { labelName in
                label.value.withUnsafeBufferPointer { fingerprint.add(labelName, $0) }
            }
        }
        return fingerprint
    }

    func number(of name: StaticString, canonical: Bool) -> Double? {
        let wanted = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        guard let label = first(where: { $0.name.elementsEqual(wanted) }) else { return nil }
        return label.value.withUnsafeBufferPointer {
            canonical ? ExpositionStructure.canonicalNumber($0) : ExpositionStructure.number($0)
        }
    }

    func contains(_ name: [UInt8]) -> Bool {
        contains { $0.name == name }
    }
}
