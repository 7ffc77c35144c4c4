import Benchmark
import MetricsFilter

/// The filter over a whole scrape body, fed in 64 KiB chunks as the gateway feeds it:
/// identity, the PII policy and the capped policy, on 10k- and 100k-series bodies.
/// MB/s = body size × throughput (scrapes/s); sizes are in the benchmark names.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident],
        maxDuration: .seconds(10),
        maxIterations: 200
    )

    for series in [10_000, 100_000] {
        let body = Bodies.exposition(series: series)
        let megabytes = Double(body.count) / 1_000_000
        let size = "\(series / 1000)k series, \(String(Int(megabytes * 10) / 10)).\(Int(megabytes * 10) % 10) MB"
        let policies: [(String, FilterPolicy)] = [
            ("identity", FilterPolicy()),
            ("PII policy", Bodies.piiPolicy()),
            ("capped policy", Bodies.cappedPolicy(series: series)),
        ]
        for (name, policy) in policies {
            let tracker = policy.limits.needsTracker ? SeriesTracker(limits: policy.limits) : nil
            Benchmark("\(name), \(size)") { benchmark in
                for _ in benchmark.scaledIterations {
                    blackHole(Bodies.filter(body, StreamingFilter(policy: policy, format: .text, tracker: tracker)))
                }
            }
        }
    }
    regexBenchmarks()
}

enum Bodies {
    /// Feeds `body` to `filter` in 64 KiB chunks, as the gateway does, the output
    /// thrown away chunk by chunk.
    static func filter(_ body: [UInt8], _ filter: StreamingFilter) -> FilterReport {
        var output: [UInt8] = []
        output.reserveCapacity(1 << 17)
        body.withUnsafeBytes { bytes in
            var start = 0
            while start < bytes.count {
                let end = min(start + 65536, bytes.count)
                filter.process(UnsafeRawBufferPointer(rebasing: bytes[start..<end]), into: &output)
                output.removeAll(keepingCapacity: true)
                start = end
            }
        }
        return filter.finish(into: &output)
    }

    /// An app's request counter with an e-mail, a client IP and a session id per
    /// series, plus a histogram: what the PII policy exists for.
    static func exposition(series: Int) -> [UInt8] {
        var text = "# HELP app_http_requests_total HTTP requests.\n# TYPE app_http_requests_total counter\n"
        for index in 0..<series {
            text += "app_http_requests_total{method=\"get\",route=\"/api/v1/items/\(index % 500)\",status=\"200\","
            text += "user_email=\"user\(index)@example.com\",client_ip=\"10.\(index % 250).\((index / 250) % 250).\(index % 97)\","
            text += "session_id=\"s\(index)\"} \(index * 3 + 1)\n"
        }
        text += "# TYPE app_request_duration_seconds histogram\n"
        for le in ["0.005", "0.05", "0.5", "5", "+Inf"] {
            text += "app_request_duration_seconds_bucket{le=\"\(le)\"} 10\n"
        }
        text += "app_request_duration_seconds_sum 1.5\napp_request_duration_seconds_count 10\n"
        return Array(text.utf8)
    }

    static func piiPolicy() -> FilterPolicy {
        var policy = FilterPolicy()
        policy.pii = PIIPolicy(
            labelRules: [.init(name: "session", labelNames: ["session_id"], action: .hash)],
            detectorRules: [.init(name: "email", detector: .email, action: .hash),
                            .init(name: "ip", detector: .ipv4, action: .redact)],
            hashKey: Array("benchmark-key-0123456789abcdef".utf8))
        return policy
    }

    static func cappedPolicy(series: Int) -> FilterPolicy {
        var policy = FilterPolicy()
        policy.limits = SeriesLimits(sampleLimit: series, seriesPerMetric: series / 2, valuesPerLabel: series)
        return policy
    }
}
