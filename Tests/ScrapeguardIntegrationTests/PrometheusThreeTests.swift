import Foundation
import MetricsFilter
import Testing

/// Prometheus 3's scrapes through the gateway: each Accept Prometheus sends, against
/// apps that answer each text format with UTF-8 names (as client_golang does when its
/// negotiation carries `escaping=allow-utf-8`). What the scraper gets is parsed by
/// prometheus_client 0.26's own parsers, chosen by the response's media type as
/// Prometheus chooses its parser: the app's samples, less the PII label the policy
/// drops, with names quoted where the scraper asked for UTF-8 and escaped
/// (`underscores`) where it did not.
@Suite(.serialized) struct PrometheusThreeTests {
    /// The exact Accept strings (../shared/design/PROMETHEUS3-NOTES.md and
    /// scrape_test.go), and whether each one takes UTF-8 names.
    static let scrapers: [(name: String, accept: String, takesUTF8: Bool)] = [
        ("3.x", "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", true),
        ("3.x native histograms", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1", true),
        ("3.x legacy validation", "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=underscores;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", false),
        ("3.0-3.3", "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;escaping=allow-utf-8;q=0.3,*/*;q=0.2", true),
        ("2.42", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", false),
    ]

    /// One family of each kind of name: a UTF-8 counter, a UTF-8 gauge with a label to
    /// drop, a legacy gauge with a UTF-8 label.
    static func body(_ format: String) -> String {
        let counter = format == "openmetrics" ? "\"http.requests\"" : "\"http.requests_total\""
        var text = """
            # HELP \(counter) Requests served.
            # TYPE \(counter) counter
            {"http.requests_total","http.method"="GET",user_id="42"} 7
            # TYPE "queue.depth" gauge
            {"queue.depth",queue="a",user_id="42"} 3
            # TYPE legacy_gauge gauge
            legacy_gauge{"k8s.pod"="p1"} 1

            """
        if format == "openmetrics" { text += "# EOF\n" }
        return text
    }

    static let apps = [
        ("text", "text/plain; version=0.0.4; charset=utf-8; escaping=allow-utf-8"),
        ("text", "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8"),
        ("openmetrics", "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"),
    ]

    /// One sample as prometheus_client reads it.
    struct ParsedSample: Hashable, Sendable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    static let expectedUTF8 = [
        ParsedSample(name: "http.requests_total", labels: ["http.method": "GET"], value: 7),
        ParsedSample(name: "queue.depth", labels: ["queue": "a"], value: 3),
        ParsedSample(name: "legacy_gauge", labels: ["k8s.pod": "p1"], value: 1),
    ]
    static let expectedEscaped = [
        ParsedSample(name: "http_requests_total", labels: ["http_method": "GET"], value: 7),
        ParsedSample(name: "queue_depth", labels: ["queue": "a"], value: 3),
        ParsedSample(name: "legacy_gauge", labels: ["k8s_pod": "p1"], value: 1),
    ]

    /// What protobuf_policy_check.py holds the gateway to: `user_id` dropped, e-mail
    /// addresses redacted.
    static let protobufPIIPolicy = """
        pii:
          labels:
            - names: [user_id]
              action: drop
          detectors:
            - detector: email
              action: redact
        """

    /// The protobuf exposition, end to end: an app built on Google's protobuf runtime
    /// (Tests/Support/protobuf_exposition.py: counters with exemplars and created
    /// timestamps, gauges, summaries, classic, native and mixed histograms, unknown
    /// fields) scraped by a Prometheus with native histograms on. What the scraper gets,
    /// decoded by the same runtime, is the app's families less what the policy removes,
    /// every untouched field byte for byte (protobuf_policy_check.py). A scraper that
    /// did not ask for protobuf gets a 502 from that app, never its bytes.
    @Test func protobufReachesAScraperThatAsksForItFiltered() async throws {
        let python = Repository.root.appendingPathComponent(".venv-test/bin/python").path
        let support = Repository.root.appendingPathComponent("Tests/Support")
        let sample = try await ProcessRunner.run([python, support.appendingPathComponent("protobuf_exposition.py").path, "sample"])
        #expect(sample.status == 0, "\(sample.stderr)")
        let contentType = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
        let upstream = TestUpstream(body: [UInt8](sample.stdout), contentType: contentType)
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(
            upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics",
            serverExtra: Self.protobufPIIPolicy)
        let nativeScraper = Self.scrapers[1]
        let response = try await Curl().get("\(gateway.baseURL)/metrics", extra: ["-H", "Accept: \(nativeScraper.accept)"])
        #expect(response.status == 200, "\(response.bodyText)")
        #expect(response.headers.lowercased().contains("content-type: \(contentType.lowercased())"), "\(response.headers)")
        // The second scrape replays the first's decisions from the series memo: the
        // same bytes.
        let second = try await Curl().get("\(gateway.baseURL)/metrics", extra: ["-H", "Accept: \(nativeScraper.accept)"])
        #expect(second.status == 200 && second.body == response.body, "the second scrape differs: \(second.body.count) bytes")
        let metrics = try await Curl().get("\(gateway.baseURL)/gateway/metrics").bodyText
        #expect(!metrics.contains("scrapeguard_filter_memo_lines_total{result=\"hit\"} 0\n"), "\(metrics)")
        let appFile = gateway.folder.appendingPathComponent("app.bin")
        let gatewayFile = gateway.folder.appendingPathComponent("gateway.bin")
        try sample.stdout.write(to: appFile)
        try response.body.write(to: gatewayFile)
        let check = try await ProcessRunner.run([python, support.appendingPathComponent("protobuf_policy_check.py").path,
                                                 appFile.path, gatewayFile.path])
        #expect(check.status == 0, "\(check.stdoutText)\(check.stderr)")
        let legacy = try await Curl().get("\(gateway.baseURL)/metrics", extra: ["-H", "Accept: \(Self.scrapers[0].accept)"])
        #expect(legacy.status == 502, "a scraper that did not ask for protobuf: \(legacy.status)")
        await gateway.stop()
        await upstream.stop()
    }

    /// The reference app's protobuf body through `ProtobufFilter` at every chunk size,
    /// one byte to the whole: the same bytes and the same report each time.
    @Test func theReferenceBodyFiltersAlikeAtEveryChunkBoundary() async throws {
        let python = Repository.root.appendingPathComponent(".venv-test/bin/python").path
        let app = Repository.root.appendingPathComponent("Tests/Support/protobuf_exposition.py").path
        let body = [UInt8](try await ProcessRunner.run([python, app, "sample"]).stdout)
        #expect(body.count > 1000)
        var policy = FilterPolicy()
        policy.pii = PIIPolicy(labelRules: [.init(name: "user", labelNames: ["user_id"], action: .drop)],
                               detectorRules: [.init(name: "email", detector: .email, action: .redact)])
        func filter(inChunksOf size: Int) -> ([UInt8], FilterReport) {
            let filter = ProtobufFilter(policy: policy, names: .allowUTF8)
            var output: [UInt8] = []
            for start in stride(from: 0, to: body.count, by: size) {
                filter.process(Array(body[start..<min(start + size, body.count)]), into: &output)
            }
            return (output, filter.finish(into: &output))
        }
        let whole = filter(inChunksOf: body.count)
        #expect(whole.1.samplesOut > 0 && whole.1.samplesRewritten > 0 && whole.1.seriesDropped == ["duplicate": 1])
        var differing: [Int] = []
        for size in 1..<body.count {
            let split = filter(inChunksOf: size)
            if split.0 != whole.0 || split.1 != whole.1 { differing.append(size) }
        }
        #expect(differing.isEmpty, "chunk sizes that changed the result: \(differing.prefix(20))")
    }

    /// The same families as text (what client_golang serves a Prometheus without
    /// native histograms) and as protobuf, each through a gateway with the same
    /// policy: the protobuf output, rendered as text the way client_golang renders it,
    /// holds the same samples as the text output (prometheus_client's parser on both).
    @Test func textAndProtobufFormsGiveTheSameFilteredSamples() async throws {
        let python = Repository.root.appendingPathComponent(".venv-test/bin/python").path
        let support = Repository.root.appendingPathComponent("Tests/Support")
        let app = support.appendingPathComponent("protobuf_exposition.py").path
        let parser = support.appendingPathComponent("parse_exposition.py").path
        let protobufBody = try await ProcessRunner.run([python, app, "sample"]).stdout
        let textBody = try await ProcessRunner.run([python, app, "text"]).stdout
        let policy = """
            metric_relabel_configs:
              - action: drop
                source_labels: [__name__]
                regex: legacy_.*

            """ + Self.protobufPIIPolicy
        var parsed: [String] = []
        for (body, contentType, accept) in [
            (textBody, "text/plain; version=0.0.4; charset=utf-8", Self.scrapers[4].accept),
            (protobufBody, "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
             Self.scrapers[1].accept),
        ] {
            let upstream = TestUpstream(body: [UInt8](body), contentType: contentType)
            let upstreamPort = try await upstream.start()
            let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics", serverExtra: policy)
            let response = try await Curl().get("\(gateway.baseURL)/metrics", extra: ["-H", "Accept: \(accept)"])
            #expect(response.status == 200, "\(contentType): \(response.bodyText)")
            var text = response.body
            if contentType.hasPrefix("application/vnd.google.protobuf") {
                let rendered = try await ProcessRunner.run([python, app, "render"], stdin: response.body)
                #expect(rendered.status == 0, "\(rendered.stderr)")
                text = rendered.stdout
            }
            let samples = try await ProcessRunner.run([python, parser, "text/plain; version=0.0.4"], stdin: text)
            #expect(samples.status == 0, "\(samples.stderr)")
            parsed.append(samples.stdoutText)
            await gateway.stop()
            await upstream.stop()
        }
        #expect(parsed.count == 2 && parsed[0] == parsed[1], "text:\n\(parsed.first ?? "")\nprotobuf:\n\(parsed.last ?? "")")
        #expect(parsed.first?.contains("\"redacted\"") == true && parsed.first?.contains("user_id") == false
                    && parsed.first?.contains("legacy_jobs") == false, "the policy acted: \(parsed.first ?? "")")
    }

    @Test func eachPrometheusGetsTheAppsSamplesWithNamesItTakes() async throws {
        let python = Repository.root.appendingPathComponent(".venv-test/bin/python").path
        let parser = Repository.root.appendingPathComponent("Tests/Support/parse_exposition.py").path
        for (format, contentType) in Self.apps {
            let upstream = TestUpstream(body: Array(Self.body(format).utf8), contentType: contentType)
            let upstreamPort = try await upstream.start()
            let gateway = try await TestGateway.start(
                upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics",
                serverExtra: "pii:\n  labels:\n    - names: [user_id]\n      action: drop")
            for scraper in Self.scrapers {
                let context = "\(scraper.name) scraping an app that answers \(contentType)"
                let response = try await Curl().get("\(gateway.baseURL)/metrics", extra: ["-H", "Accept: \(scraper.accept)"])
                #expect(response.status == 200, "\(context): \(response.status) \(response.bodyText)")
                let served = try #require(response.headers.split(separator: "\r\n")
                    .first { $0.lowercased().hasPrefix("content-type:") }?.dropFirst("content-type:".count)
                    .trimmingCharacters(in: .whitespaces), "\(context)")
                #expect(served.hasPrefix(contentType.split(separator: ";").prefix(2).joined(separator: ";")), "\(context): \(served)")
                let parsed = try await ProcessRunner.run([python, parser, served], stdin: response.body)
                #expect(parsed.status == 0, "\(context): prometheus_client refused it: \(parsed.stderr)\n\(response.bodyText)")
                let samples = try JSONSerialization.jsonObject(with: Data(parsed.stdoutText.utf8)) as? [[Any]] ?? []
                let normalized = samples.map { sample in
                    ParsedSample(name: sample[0] as? String ?? "", labels: sample[1] as? [String: String] ?? [:],
                                 value: (sample[2] as? NSNumber)?.doubleValue ?? .nan)
                }
                #expect(normalized == (scraper.takesUTF8 ? Self.expectedUTF8 : Self.expectedEscaped),
                        "\(context):\n\(response.bodyText)")
            }
            let asked = upstream.receivedRequests.compactMap { $0.headers.first(name: "Accept") }
            #expect(asked.allSatisfy { !$0.contains("*/*") }, "\(asked)")
            #expect(asked.filter { $0.contains("protobuf") }.count == 1, "only the native-histogram scraper's: \(asked)")
            #expect(asked.first?.contains("escaping=allow-utf-8") == true, "the scraper's escaping= reaches the app: \(asked)")
            await gateway.stop()
            await upstream.stop()
        }
    }
}
