import Benchmark
import MetricsFilter

/// The filter over a whole scrape body, fed in 64 KiB chunks as the gateway feeds it:
/// identity, the PII policy, the capped policy and a replace + labeldrop policy, on
/// 10k- and 100k-series bodies, in the text format and as the same series in the
/// delimited protobuf exposition. Each text policy twice: a first scrape (a fresh
/// filter, no memo: what a new pod or a changed policy costs) and a steady one
/// (`steady …`: the same series again through a series memo that the first scrape of
/// the same body filled, as every scrape after the first meets it).
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
            ("replace + labeldrop policy", Bodies.replacePolicy()),
        ]
        for (name, policy) in policies {
            let tracker = policy.limits.needsTracker ? SeriesTracker(limits: policy.limits) : nil
            Benchmark("\(name), \(size)") { benchmark in
                for _ in benchmark.scaledIterations {
                    blackHole(Bodies.filter(body, StreamingFilter(policy: policy, format: .text, tracker: tracker)))
                }
            }
            Benchmark("steady \(name), \(size)") { benchmark in
                // A memo the whole body fits in (the default 32 MiB holds about 70k of
                // these series rewritten, 115k as they are), filled by a first scrape and
                // replayed once: the second scrape also keeps where admission found each
                // unit (`UnitHint`), which every later one uses. The harness runs this
                // closure for each measured iteration, so both come before the measure.
                let memo = SeriesMemo(budget: Bodies.steadyMemoBudget)
                let tracker = policy.limits.needsTracker ? SeriesTracker(limits: policy.limits) : nil
                for _ in 0..<2 {
                    blackHole(Bodies.filter(body, StreamingFilter(policy: policy, format: .text, tracker: tracker, memo: memo)))
                }
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    blackHole(Bodies.filter(body, StreamingFilter(policy: policy, format: .text, tracker: tracker, memo: memo)))
                }
            }
        }
        // The ceiling: copying the body in the same 64 KiB chunks, nothing else.
        Benchmark("memcpy ceiling, \(size)") { benchmark in
            var output = [UInt8](repeating: 0, count: 1 << 16)
            for _ in benchmark.scaledIterations {
                body.withUnsafeBytes { bytes in
                    var start = 0
                    while start < bytes.count {
                        let end = min(start + 65536, bytes.count)
                        output.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[start..<end])) }
                        start = end
                    }
                }
                blackHole(output)
            }
        }
        let protobufPolicies = policies.filter { $0.0 != "replace + labeldrop policy" }
        let protobuf = Bodies.protobuf(series: series)
        let protobufMegabytes = Double(protobuf.count) / 1_000_000
        let protobufSize = "\(series / 1000)k series, \(Int(protobufMegabytes * 10) / 10).\(Int(protobufMegabytes * 10) % 10) MB"
        for (name, policy) in protobufPolicies {
            let tracker = policy.limits.needsTracker ? SeriesTracker(limits: policy.limits) : nil
            Benchmark("protobuf \(name), \(protobufSize)") { benchmark in
                for _ in benchmark.scaledIterations {
                    blackHole(Bodies.filter(protobuf, ProtobufFilter(policy: policy, tracker: tracker)))
                }
            }
            Benchmark("steady protobuf \(name), \(protobufSize)") { benchmark in
                let memo = SeriesMemo(budget: Bodies.steadyMemoBudget)
                let tracker = policy.limits.needsTracker ? SeriesTracker(limits: policy.limits) : nil
                for _ in 0..<2 {
                    blackHole(Bodies.filter(protobuf, ProtobufFilter(policy: policy, tracker: tracker, memo: memo)))
                }
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    blackHole(Bodies.filter(protobuf, ProtobufFilter(policy: policy, tracker: tracker, memo: memo)))
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
        feed(body, filter.process(_:into:), filter.finish(into:))
    }

    static func filter(_ body: [UInt8], _ filter: ProtobufFilter) -> FilterReport {
        feed(body, filter.process(_:into:), filter.finish(into:))
    }

    private static func feed(_ body: [UInt8], _ process: (UnsafeRawBufferPointer, inout [UInt8]) -> Void,
                             _ finish: (inout [UInt8]) -> FilterReport) -> FilterReport {
        var output: [UInt8] = []
        output.reserveCapacity(1 << 17)
        body.withUnsafeBytes { bytes in
            var start = 0
            while start < bytes.count {
                let end = min(start + 65536, bytes.count)
                process(UnsafeRawBufferPointer(rebasing: bytes[start..<end]), &output)
                output.removeAll(keepingCapacity: true)
                start = end
            }
        }
        return finish(&output)
    }

    /// The series of `exposition(series:)` as the delimited protobuf exposition, as
    /// client_golang writes them: one counter family, one histogram family.
    static func protobuf(series: Int) -> [UInt8] {
        func varint(_ value: Int, _ out: inout [UInt8]) {
            var value = UInt64(value)
            while value >= 0x80 {
                out.append(UInt8(truncatingIfNeeded: value) | 0x80)
                value >>= 7
            }
            out.append(UInt8(value))
        }
        func field(_ number: Int, _ payload: [UInt8], _ out: inout [UInt8]) {
            varint(number << 3 | 2, &out)
            varint(payload.count, &out)
            out += payload
        }
        func double(_ number: Int, _ value: Double, _ out: inout [UInt8]) {
            varint(number << 3 | 1, &out)
            withUnsafeBytes(of: value.bitPattern.littleEndian) { out += $0 }
        }
        func label(_ name: String, _ value: String, _ out: inout [UInt8]) {
            var pair: [UInt8] = []
            field(1, Array(name.utf8), &pair)
            field(2, Array(value.utf8), &pair)
            field(1, pair, &out)
        }
        var counters: [UInt8] = []
        field(1, Array("app_http_requests_total".utf8), &counters)
        field(2, Array("HTTP requests.".utf8), &counters)
        for index in 0..<series {
            var metric: [UInt8] = []
            label("method", "get", &metric)
            label("route", "/api/v1/items/\(index % 500)", &metric)
            label("status", "200", &metric)
            label("user_email", "user\(index)@example.com", &metric)
            label("client_ip", "10.\(index % 250).\((index / 250) % 250).\(index % 97)", &metric)
            label("session_id", "s\(index)", &metric)
            var counter: [UInt8] = []
            double(1, Double(index * 3 + 1), &counter)
            field(3, counter, &metric)
            field(4, metric, &counters)
        }
        var histogram: [UInt8] = []
        varint(1 << 3, &histogram)
        varint(10, &histogram)
        double(2, 1.5, &histogram)
        for bound in [0.005, 0.05, 0.5, 5] {
            var bucket: [UInt8] = []
            varint(1 << 3, &bucket)
            varint(10, &bucket)
            double(2, bound, &bucket)
            field(3, bucket, &histogram)
        }
        var histograms: [UInt8] = []
        field(1, Array("app_request_duration_seconds".utf8), &histograms)
        varint(3 << 3, &histograms)
        varint(4, &histograms)
        var metric: [UInt8] = []
        field(7, histogram, &metric)
        field(4, metric, &histograms)
        var body: [UInt8] = []
        for family in [counters, histograms] {
            varint(family.count, &body)
            body += family
        }
        return body
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

    /// Enough for every series of the 100k body under any of these policies (the PII
    /// policy's take about 470 bytes each).
    static let steadyMemoBudget = 96 << 20

    /// A `replace` that takes a label's value apart (each route's item number into a
    /// label of its own) and a `labeldrop`: rules that send every line down the full
    /// path on a first scrape.
    static func replacePolicy() -> FilterPolicy {
        do {
            return FilterPolicy(relabelRules: [
                try RelabelRule(.init(action: "replace", sourceLabels: ["route"], targetLabel: "item",
                                      regex: "/api/v1/items/(\\d+)", replacement: "item-$1")),
                try RelabelRule(.init(action: "labeldrop", regex: "session_id")),
            ])
        } catch {
            fatalError("benchmark policy: \(error)")
        }
    }

    static func cappedPolicy(series: Int) -> FilterPolicy {
        var policy = FilterPolicy()
        policy.limits = SeriesLimits(sampleLimit: series, seriesPerMetric: series / 2, valuesPerLabel: series)
        return policy
    }
}
