/// One histogram (or gauge histogram) group, checked when it ends.
struct HistogramGroup {
    let gauge: Bool
    private(set) var samples = 0
    private(set) var rewritten = 0
    private var buckets: [(le: Double, value: Double)] = []
    private var count: Double?
    private var sum: Double?
    private var outOfOrder = false

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

    var problem: String? {
        if outOfOrder { return "invalid_histogram" }
        if (count == nil) != (sum == nil) { return "histogram_count_sum" }
        guard let last = buckets.last else { return buckets.isEmpty && (count != nil || sum != nil) ? "histogram_no_inf_bucket" : nil }
        guard last.le == .infinity else { return "histogram_no_inf_bucket" }
        for index in buckets.indices.dropFirst() {
            if buckets[index].le <= buckets[index - 1].le { return "histogram_buckets_out_of_order" }
            if buckets[index].value < buckets[index - 1].value { return "histogram_bucket_values_out_of_order" }
        }
        if let count, count != last.value { return "histogram_count_mismatch" }
        if !gauge, sum != nil, buckets.contains(where: { $0.value < 0 }) { return "histogram_negative_bucket" }
        return nil
    }
}
