import MetricsFilter
import Testing

/// The streaming filter run over a string, as the filter tests run it.
public enum FilterHarness {
    /// Filters `input` in chunks of `chunk` bytes (one chunk by default). A small input
    /// without a tracker is also filtered at every chunk size, and must give the same
    /// output and report each time: every scanner test is a chunk-boundary test too.
    public static func run(_ input: String, _ policy: FilterPolicy = FilterPolicy(), format: ExpositionFormat = .text,
                    names: NameEscaping = .unspecified, tracker: SeriesTracker? = nil,
                    chunk: Int? = nil) -> (String, FilterReport) {
        let result = filterOnce(input, policy, format: format, names: names, tracker: tracker, chunk: chunk)
        if chunk == nil, tracker == nil, !policy.limits.needsTracker, input.utf8.count <= 2048 {
            for size in 1..<max(input.utf8.count, 1) {
                let split = filterOnce(input, policy, format: format, names: names, tracker: nil, chunk: size)
                if split.0 != result.0 || split.1 != result.1 {
                    Issue.record("chunks of \(size) bytes changed the result:\n\(split.0)\nvs\n\(result.0)")
                    break
                }
            }
        }
        if tracker == nil {
            // The same through a memo of series decisions: cold, warm, read as scrapes
            // at once share it (changing nothing in it) and warm again, then through
            // one too small to hold them all (refusing and forgetting).
            for budget in [4 << 20, 2048] {
                let memo = SeriesMemo(budget: budget)
                for pass in ["cold", "warm", "shared", "warm again"] {
                    let remembered = filterOnce(input, policy, format: format, names: names, tracker: nil, chunk: chunk,
                                                memo: memo, sharingMemo: pass == "shared")
                    if remembered.0 != result.0 || remembered.1 != result.1 {
                        Issue.record("the \(pass) pass through a memo of \(budget) bytes changed the result:\n\(remembered.0)\nvs\n\(result.0)\n\(remembered.1)\nvs\n\(result.1)")
                        return result
                    }
                }
            }
        }
        return result
    }

    public static func filterOnce(_ input: String, _ policy: FilterPolicy, format: ExpositionFormat,
                           names: NameEscaping = .unspecified, tracker: SeriesTracker?,
                           chunk: Int?, memo: SeriesMemo? = nil, sharingMemo: Bool = false) -> (String, FilterReport) {
        let filter = StreamingFilter(policy: policy, format: format, names: names, tracker: tracker, memo: memo,
                                     sharingMemo: sharingMemo)
        var output: [UInt8] = []
        let bytes = Array(input.utf8)
        let size = chunk ?? max(bytes.count, 1)
        var start = 0
        while start < bytes.count {
            filter.process(Array(bytes[start..<min(start + size, bytes.count)]), into: &output)
            start += size
        }
        let report = filter.finish(into: &output)
        return (String(decoding: output, as: UTF8.self), report)
    }

    /// A PII policy of every kind of rule, under a fixed key.
    public static func piiPolicy() throws -> FilterPolicy {
        var policy = FilterPolicy()
        policy.pii = PIIPolicy(
            labelRules: [.init(name: "session", labelNames: ["session_id"], action: .hash),
                         .init(name: "tokens", labelRegex: try RelabelRegex(".*_token"), action: .drop)],
            detectorRules: [.init(name: "email", detector: .email, action: .hash),
                            .init(name: "ip", detector: .ipv4, action: .redact),
                            .init(name: "ip6", detector: .ipv6, action: .redact),
                            .init(name: "card", detector: .card, action: .dropSeries)],
            hashKey: Array("0123456789abcdef0123456789abcdef".utf8))
        return policy
    }
}
