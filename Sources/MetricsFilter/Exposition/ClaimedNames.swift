extension MetricType {
    /// The sample names a family of this type has besides its own name, as suffixes
    /// (OpenMetrics' families; prometheus_client's parser checks the same).
    var sampleSuffixes: [StaticString] {
        switch self {
        case .counter: return ["_total", "_created"]
        case .histogram: return ["_bucket", "_count", "_sum", "_created"]
        case .gaugehistogram: return ["_bucket", "_gcount", "_gsum"]
        case .summary: return ["_count", "_sum", "_created"]
        case .info: return ["_info"]
        case .gauge, .unknown, .untyped, .stateset: return []
        }
    }
}

/// Every name the OpenMetrics families so far claim: each family's own, and the
/// sample names its type adds (`a_total` and `a_created` for a counter `a`). A family
/// that would claim a name again clashes with an earlier one.
struct ClaimedNames {
    private var names: Set<ByteKey> = []

    /// Claims a family's own name; false if another family claims it.
    mutating func claimFamily(_ name: [UInt8]) -> Bool {
        names.insert(ByteKey(name)).inserted
    }

    /// Claims the sample names a family's TYPE adds; false, and nothing claimed, if
    /// another family claims one of them.
    mutating func claimSampleNames(of family: [UInt8], type: MetricType) -> Bool {
        let claims = type.sampleSuffixes.map { suffix in
            ByteKey(family + UnsafeBufferPointer(start: suffix.utf8Start, count: suffix.utf8CodeUnitCount))
        }
        guard !claims.contains(where: names.contains) else { return false }
        names.formUnion(claims)
        return true
    }

    func contains(_ name: ByteKey) -> Bool {
        names.contains(name)
    }
}
