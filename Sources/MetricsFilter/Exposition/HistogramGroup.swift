/// One histogram (or gauge histogram) group, checked when it ends.
struct HistogramGroup {
    let gauge: Bool
    private(set) var samples = 0
    private(set) var rewritten = 0
    private var buckets: [(le: Double, value: Double)] = []
    private var count: Double?
    private var sum: Double?
    private var outOfOrder = false

    /// Held back only in OpenMetrics: the text format's samples are checked line by line.
    init(gauge: Bool) {
        self.gauge = gauge
    }

    mutating func add(suffix: String, le: Double?, value: Double?, rewritten: Bool) {
        samples += 1
        if rewritten { self.rewritten += 1 }
        switch suffix {
        case "_bucket":
            guard let le, let value else { outOfOrder = true; return }
            buckets.append((le, value))
        case "_count", "_gcount": count = value
        case "_sum", "_gsum": sum = value
        default: break
        }
    }

    var problem: DropReason? {
        if outOfOrder { return .invalidHistogram }
        if (count == nil) != (sum == nil) { return .histogramCountSum }
        guard let last = buckets.last else { return buckets.isEmpty && (count != nil || sum != nil) ? .histogramNoInfBucket : nil }
        guard last.le == .infinity else { return .histogramNoInfBucket }
        for index in buckets.indices.dropFirst() {
            if buckets[index].le <= buckets[index - 1].le { return .histogramBucketsOutOfOrder }
            if buckets[index].value < buckets[index - 1].value { return .histogramBucketValuesOutOfOrder }
        }
        if let count, count != last.value { return .histogramCountMismatch }
        // A sum is a counter unless a bucket bound is negative: a histogram with
        // negative bounds has no `_sum`, a gauge histogram without them no negative
        // `_gsum`.
        let negativeBounds = buckets.contains { $0.le < 0 }
        if !gauge, sum != nil, negativeBounds { return .histogramNegativeBucketWithSum }
        if gauge, let sum, sum < 0, !negativeBounds { return .gaugehistogramNegativeGsum }
        return nil
    }
}
