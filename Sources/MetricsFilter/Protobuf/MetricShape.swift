/// What Prometheus makes of one protobuf `Metric`, which the text formats write as
/// several series: the names of a histogram's or summary's parts (the rules see each),
/// how many samples it counts as (`sample_limit`), and whether its series carry an
/// `le` or `quantile` label there (`label_limit`).
struct MetricShape {
    /// The parts' suffixes, by the family's type (2 summary, 4 histogram, 5 gauge
    /// histogram); beside them, the family's own name.
    let partSuffixes: [[UInt8]]
    private let familyType: UInt64

    init(familyType: UInt64) {
        self.familyType = familyType
        switch familyType {
        case 2: partSuffixes = ["_sum", "_count"].map { Array($0.utf8) }
        case 4: partSuffixes = ["_bucket", "_sum", "_count"].map { Array($0.utf8) }
        case 5: partSuffixes = ["_bucket", "_gsum", "_gcount", "_sum", "_count"].map { Array($0.utf8) }
        default: partSuffixes = []
        }
    }

    /// The samples a metric counts as, and whether they carry a structural label: a
    /// summary's quantiles plus `_sum` and `_count`; a classic histogram's buckets
    /// (with the `+Inf` one client libraries leave implicit) plus `_sum` and `_count`;
    /// anything else (a native-only histogram too) one.
    func samples(of metric: UnsafeRawBufferPointer, fields: [ProtoWire.Field]) throws(ProtoWire.Malformed)
        -> (count: Int, structuralLabel: Bool) {
        let (container, repeated): (Int, Int) = switch familyType {
        case 2: (MetricField.Metric.summary, MetricField.summaryQuantile)
        case 4, 5: (MetricField.Metric.histogram, MetricField.histogramBucket)
        default: (0, 0)
        }
        guard container != 0, let field = fields.last(where: { $0.number == container && $0.wireType == .lengthDelimited })
        else { return (1, false) }
        let body = metric.value(of: field)
        var entries = 0
        var hasInfinity = false
        try ProtoWire.forEachField(of: body) { entry throws(ProtoWire.Malformed) in
            guard entry.number == repeated, entry.wireType == .lengthDelimited else { return }
            entries += 1
            guard container == MetricField.Metric.histogram else { return }
            try ProtoWire.forEachField(of: body.value(of: entry)) { bound in
                if bound.number == MetricField.bucketUpperBound, bound.wireType == .fixed64,
                   Self.double(body.value(of: entry), bound) == .infinity {
                    hasInfinity = true
                }
            }
        }
        guard entries > 0 else { return (1, false) }
        return (entries + (container == MetricField.Metric.histogram && !hasInfinity ? 1 : 0) + 2, true)
    }

    private static func double(_ message: UnsafeRawBufferPointer, _ field: ProtoWire.Field) -> Double {
        var bits: UInt64 = 0
        for offset in 0..<8 { bits |= UInt64(message[field.valueStart + offset]) << (8 * offset) }
        return Double(bitPattern: bits)
    }
}
