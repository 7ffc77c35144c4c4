import Foundation
import GatewayCore
import Testing

/// The proxy path: what the scraper gets for each way the app can answer.
@Suite struct ProxyTests {
    static let body: [UInt8] = {
        var text = "# HELP app_processed_tasks_total Tasks.\n# TYPE app_processed_tasks_total counter\n"
        for index in 0..<6000 {
            text += "app_processed_tasks_total{worker=\"w\(index)\",label=\"v\\\"q\\\\\"} \(index).5\n"
        }
        return Array(text.utf8)
    }()

    @Test func goodClientGetsTheUpstreamBodyByteForByte() async throws {
        let upstream = TestUpstream(body: Self.body, contentType: "text/plain; version=0.0.4; charset=utf-8")
        let upstreamPort = try await upstream.start()
        for path in ["/metrics", "/chunked"] {
            let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(upstreamPort)\(path)")
            let response = try await Curl().get("\(gateway.baseURL)/metrics")
            #expect(response.exitCode == 0, "\(response.stderr)")
            #expect(response.status == 200)
            #expect(Array(response.body) == Self.body, "\(path): \(response.body.count) bytes, expected \(Self.body.count)")
            #expect(response.headers.lowercased().contains("content-type: text/plain; version=0.0.4; charset=utf-8"))
            await gateway.stop()
        }
        await upstream.stop()
    }

    @Test func gzipWhenTheScraperAcceptsIt() async throws {
        let upstream = TestUpstream(body: Self.body)
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(upstreamPort)/chunked")
        let compressed = try await Curl().get("\(gateway.baseURL)/metrics", extra: ["-H", "Accept-Encoding: gzip"])
        #expect(compressed.headers.lowercased().contains("content-encoding: gzip"))
        #expect(compressed.body.count < Self.body.count / 4, "\(compressed.body.count) bytes")
        let file = try makeTemporaryFolder("sg-gzip").appendingPathComponent("body.gz")
        try compressed.body.write(to: file)
        let unzipped = try await ProcessRunner.run(["gzip", "-dc", file.path])
        #expect(Array(unzipped.stdout) == Self.body, "gzip -d gives the upstream body back")
        let refused = try await Curl().get("\(gateway.baseURL)/metrics", extra: ["-H", "Accept-Encoding: gzip;q=0, identity"])
        #expect(!refused.headers.lowercased().contains("content-encoding"))
        #expect(Array(refused.body) == Self.body)
        #expect(upstream.receivedRequests.allSatisfy { $0.headers.first(name: "Accept-Encoding") == "identity" })
        await gateway.stop()
        await upstream.stop()
    }

    /// The scraper's formats, protobuf among them, reach the app in its order; an app
    /// that answers text to a scraper that preferred protobuf is served as text.
    @Test func scraperPreferencesReachTheUpstream() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics")
        let accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3"
        let response = try await Curl().get("\(gateway.baseURL)/metrics", extra: ["-H", "Accept: \(accept)"])
        #expect(response.status == 200)
        let sent = try #require(upstream.receivedRequests.last?.headers.first(name: "Accept"))
        #expect(sent == accept)
        #expect(response.bodyText == "up 1\n")
        await gateway.stop()
        await upstream.stop()
    }

    @Test func upstreamDownAnswers502() async throws {
        let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(try await freePort())/metrics")
        let response = try await Curl().get("\(gateway.baseURL)/metrics")
        #expect(response.status == 502)
        #expect(response.bodyText == "upstream unavailable\n")
        await gateway.stop()
    }

    @Test func upstreamErrorStatusAnswers502() async throws {
        let upstream = TestUpstream(body: [])
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(upstreamPort)/error")
        let response = try await Curl().get("\(gateway.baseURL)/metrics")
        #expect(response.status == 502)
        #expect(!response.bodyText.contains("oops"), "the app's error body is not passed on")
        await gateway.stop()
        await upstream.stop()
    }

    @Test func upstreamSlowerThanTheScrapeTimeoutAnswers504() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8), slowDelay: .seconds(4))
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(upstreamPort)/slow")
        // Prometheus's own header sets the deadline.
        let response = try await Curl().get("\(gateway.baseURL)/metrics", extra: ["-H", "X-Prometheus-Scrape-Timeout-Seconds: 1"])
        #expect(response.status == 504)
        #expect(response.bodyText == "upstream timed out\n")
        // Without the header, the configured scrape_timeout applies.
        let configured = try await TestGateway.start(
            upstreamURL: "http://127.0.0.1:\(upstreamPort)/slow", upstreamExtra: "  scrape_timeout: 1s")
        #expect(try await Curl().get("\(configured.baseURL)/metrics").status == 504)
        await gateway.stop()
        await configured.stop()
        await upstream.stop()
    }

    @Test func oversizedStreamedBodyAbortsTheResponse() async throws {
        let upstream = TestUpstream(body: [], hugeSize: 4 << 20)
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(
            upstreamURL: "http://127.0.0.1:\(upstreamPort)/huge", upstreamExtra: "  body_size_limit: 1MiB")
        let response = try await Curl().get("\(gateway.baseURL)/metrics")
        // The status line was already sent: the transfer must end in an error, never
        // as a complete, silently truncated body.
        #expect(response.exitCode != 0, "curl saw a complete response of \(response.body.count) bytes")
        #expect(response.body.count <= (1 << 20) + 65536)
        await gateway.stop()
        await upstream.stop()
    }

    @Test func oversizedDeclaredBodyAnswers502BeforeSendingAnything() async throws {
        let upstream = TestUpstream(body: [], hugeSize: 4 << 20)
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(
            upstreamURL: "http://127.0.0.1:\(upstreamPort)/huge-length", upstreamExtra: "  body_size_limit: 1MiB")
        let response = try await Curl().get("\(gateway.baseURL)/metrics")
        #expect(response.status == 502)
        #expect(response.bodyText == "upstream body exceeds the body size limit\n")
        await gateway.stop()
        await upstream.stop()
    }

    @Test func headRequestGetsHeadersOnly() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics")
        let response = try await Curl().get("\(gateway.baseURL)/metrics", extra: ["--head"])
        #expect(response.exitCode == 0, "\(response.stderr)")
        #expect(response.status == 200)
        #expect(upstream.receivedRequests.last?.method == .HEAD)
        await gateway.stop()
        await upstream.stop()
    }

    /// An app that answers protobuf (not asked for), JSON, an unknown type, a gzip body
    /// (not asked for either), or a Content-Type that lies about its body (text, with
    /// JSON in it): the scraper gets 502, not an empty or unfiltered 200, and the
    /// scrape is counted as a bad format.
    @Test(arguments: [
        ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", nil as String?),
        ("application/json", nil),
        ("text/html; charset=utf-8", nil),
        ("text/plain; version=0.0.4; charset=utf-8", "gzip"),
        ("text/plain; version=0.0.4; charset=utf-8", nil),
    ])
    func anAppAnsweringAnUnreadableFormatIsA502(_ contentType: String, _ encoding: String?) async throws {
        let upstream = TestUpstream(body: Array("{\"up\": 1}".utf8), contentType: contentType, contentEncoding: encoding)
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics")
        let response = try await Curl().get("\(gateway.baseURL)/metrics")
        #expect(response.status == 502)
        #expect(response.bodyText == "upstream answered in a format the gateway cannot filter\n")
        let metrics = String(decoding: gateway.server.metrics.exposition(), as: UTF8.self)
        #expect(metrics.contains("scrapeguard_scrapes_total{result=\"upstream_bad_format\"} 1"), "\(metrics)")
        let asked = try #require(upstream.receivedRequests.first?.headers.first(name: "Accept"))
        #expect(!asked.contains("protobuf") && !asked.contains("*/*"), "\(asked)")
        await gateway.stop()
        await upstream.stop()
    }

    /// `upstream.allowed_query_params`: the listed parameters reach the app (a
    /// multi-target exporter's `collect[]`, `module`), any other is 400, not dropped.
    @Test func allowedQueryParametersReachTheAppAndOthersAre400() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(
            upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics",
            upstreamExtra: "  allowed_query_params: [\"collect[]\", module]")
        let allowed = try await Curl().get("\(gateway.baseURL)/metrics?collect%5B%5D=cpu&module=http_2xx")
        #expect(allowed.status == 200 && allowed.bodyText == "up 1\n")
        #expect(upstream.receivedRequests.last?.uri == "/metrics?collect%5B%5D=cpu&module=http_2xx")
        let refused = try await Curl().get("\(gateway.baseURL)/metrics?module=a&secret=1")
        #expect(refused.status == 400)
        #expect(refused.bodyText == "bad request: a query parameter that is not allowed\n")
        #expect(upstream.receivedRequests.count == 1, "the refused scrape never reached the app")
        let metrics = String(decoding: gateway.server.metrics.exposition(), as: UTF8.self)
        #expect(metrics.contains("scrapeguard_requests_refused_total{reason=\"query_parameter\"} 1"), "\(metrics)")
        await gateway.stop()
        await upstream.stop()
    }

    @Test func otherPathsAndMethodsAreRefusedWithoutEcho() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics")
        let marker = "zz-echo-marker-zz"
        let notFound = try await Curl().get("\(gateway.baseURL)/\(marker)")
        #expect(notFound.status == 404)
        #expect(!notFound.bodyText.contains(marker) && !notFound.headers.contains(marker))
        let post = try await Curl().get("\(gateway.baseURL)/metrics?\(marker)", extra: ["-X", "POST"])
        #expect(post.status == 405)
        #expect(post.headers.contains("Allow: GET, HEAD") || post.headers.lowercased().contains("allow: get, head"))
        #expect(!post.bodyText.contains(marker))
        // With a body, the body is refused first (a scrape has none), before the method.
        let postWithBody = try await Curl().get("\(gateway.baseURL)/metrics", extra: ["-X", "POST", "--data", marker])
        #expect(postWithBody.status == 413)
        #expect(!postWithBody.bodyText.contains(marker) && !postWithBody.headers.contains(marker))
        await gateway.stop()
        await upstream.stop()
    }

    @Test func keepAliveConnectionServesManyScrapes() async throws {
        let upstream = TestUpstream(body: Self.body)
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(upstreamPort)/chunked")
        let url = "\(gateway.baseURL)/metrics"
        // One curl, three URLs: one TLS connection, three requests on it.
        let result = try await ProcessRunner.run([
            "curl", "--silent", "--show-error", "-v", "--cacert", TestPKI.shared.path("ca.crt"),
            "--cert", TestPKI.shared.path("client.crt"), "--key", TestPKI.shared.path("client.key"),
            "--user", "\(TestGateway.user):\(TestGateway.password)", url, url, url,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.count == Self.body.count * 3)
        #expect(result.stderr.contains("Re-using existing connection") || result.stderr.contains("Reusing existing connection"))
        await gateway.stop()
        await upstream.stop()
    }
}
