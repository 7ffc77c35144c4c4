import Foundation
@testable import GatewayCore
@testable import MetricsFilter
import Testing
import TestSupport

/// The filter held against real programs: OpenSSL's own HMAC, and the gateway over
/// mTLS. (The filter's in-memory tests are in ScrapeguardUnitTests.)
@Suite struct FilterReferenceTests {
    /// A pseudonym is `h_` and 16 hex digits of HMAC-SHA256(key, value) as OpenSSL's own
    /// command computes it, value after value in one scrape (the scrape's HMAC context
    /// is keyed once and started over per value), in both formats.
    @Test func pseudonymsAreTheHMACOfTheValue() async throws {
        let policy = try FilterHarness.piiPolicy()
        let values = ["abc", "s-1", "abd", String(repeating: "x", count: 200), "abc"]
        let text = values.enumerated().map { "m{i=\"\($0)\",session_id=\"\($1)\"} 1\n" }.joined()
        let (textOutput, _) = FilterHarness.run(text, policy)
        let (openMetricsOutput, _) = FilterHarness.run("# TYPE m gauge\n" + text + "# EOF\n", policy, format: .openMetrics)
        for (index, value) in values.enumerated() {
            let reference = try await ProcessRunner.run(
                ["openssl", "dgst", "-sha256", "-hmac", "0123456789abcdef0123456789abcdef", "-r"], stdin: Data(value.utf8))
            try #require(reference.status == 0, "\(reference.stderr)")
            let expected = "m{i=\"\(index)\",session_id=\"h_\(reference.stdoutText.prefix(16))\"} 1"
            #expect(textOutput.contains(expected), "\(value): \(textOutput)")
            #expect(openMetricsOutput.contains(expected), "\(value): \(openMetricsOutput)")
        }
    }
}

/// The filter in the gateway: what the scraper gets over mTLS, and what the gateway
/// counts.
@Suite struct FilterGatewayTests {
    @Test func theGatewayServesTheFilteredBodyAndCountsWhatItDid() async throws {
        let body = Array("""
            # HELP app_http_requests_total Requests.
            # TYPE app_http_requests_total counter
            app_http_requests_total{user_email="alice@example.com",client_ip="203.0.113.7",pod_uid="1"} 41
            app_http_requests_total{user_email="bob@example.org",client_ip="198.51.100.23",pod_uid="2"} 13
            this line is garbage

            """.utf8)
        let (upstream, gateway) = try await Self.start(body: body, detectors: """
                - detector: email
                  action: redact
                - detector: ipv4
                  action: drop
            """)
        let response = try await Curl().get("\(gateway.baseURL)/metrics")
        #expect(response.status == 200)
        #expect(response.bodyText == """
            # HELP app_http_requests_total Requests.
            # TYPE app_http_requests_total counter
            app_http_requests_total{user_email="redacted"} 41

            """, "the two series collapse into one after the IP is dropped: the first stays")
        let metrics = try await Curl().get("\(gateway.baseURL)/gateway/metrics").bodyText
        #expect(metrics.contains("scrapeguard_filter_pii_actions_total{rule=\"email\",action=\"redact\"} 2"), "\(metrics)")
        #expect(metrics.contains("scrapeguard_filter_series_dropped_total{reason=\"duplicate\",metric=\"app_http_requests_total\"} 1"))
        #expect(metrics.contains("scrapeguard_filter_lines_rejected_total{reason=\"bad_value\"} 1"))
        await gateway.stop()
        await upstream.stop()
    }

    /// The series memo in the gateway: the second scrape replays what the first
    /// decided (the same bytes), and the gateway counts both.
    @Test func theSecondScrapeReplaysWhatTheFirstDecided() async throws {
        let body = Array("""
            # TYPE app_http_requests_total counter
            app_http_requests_total{user_email="alice@example.com",route="/a"} 41
            app_http_requests_total{user_email="bob@example.org",route="/b"} 13
            app_http_requests_total{user_email="carol@example.net",route="/c",pod_uid="3"} 7

            """.utf8)
        let (upstream, gateway) = try await Self.start(body: body, detectors: """
                - detector: email
                  action: redact
            """)
        let first = try await Curl().get("\(gateway.baseURL)/metrics")
        let second = try await Curl().get("\(gateway.baseURL)/metrics")
        #expect(first.status == 200 && second.status == 200)
        #expect(first.bodyText == second.bodyText)
        #expect(second.bodyText.contains("app_http_requests_total{user_email=\"redacted\",route=\"/c\"} 7"), "\(second.bodyText)")
        let metrics = try await Curl().get("\(gateway.baseURL)/gateway/metrics").bodyText
        #expect(metrics.contains("scrapeguard_filter_memo_lines_total{result=\"remembered\"} 3"), "\(metrics)")
        #expect(metrics.contains("scrapeguard_filter_memo_lines_total{result=\"hit\"} 3"), "\(metrics)")
        #expect(metrics.contains("scrapeguard_filter_pii_actions_total{rule=\"email\",action=\"redact\"} 6"), "\(metrics)")
        #expect(!metrics.contains("scrapeguard_filter_memo_bytes 0\n"), "\(metrics)")
        await gateway.stop()
        await upstream.stop()
    }

    /// An upstream serving `body` and a gateway in front of it that drops `pod_uid` and
    /// applies the PII `detectors` (a YAML list, indented under `detectors:`).
    private static func start(body: [UInt8], detectors: String) async throws -> (TestUpstream, TestGateway) {
        let upstream = TestUpstream(body: body)
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(
            upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics",
            serverExtra: """
                metric_relabel_configs:
                  - action: labeldrop
                    regex: pod_uid
                pii:
                  detectors:
                \(detectors)
                """)
        return (upstream, gateway)
    }
}
