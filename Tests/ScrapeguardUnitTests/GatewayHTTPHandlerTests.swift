@testable import GatewayCore
import Logging
import MetricsFilter
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Testing

/// The HTTP handler in memory: an `EmbeddedChannel` carries the scraper's request
/// parts in and the response parts out, and a scripted upstream stands in for the
/// app. No socket, no TLS, no clock: every step is driven by the test.
@Suite struct GatewayHTTPHandlerTests {
    @Test func aScrapeStreamsTheFilteredBodyAndCountsASuccess() throws {
        let harness = try Harness(filter: FilterPolicy(relabelRules: [
            try RelabelRule(.init(action: "drop", sourceLabels: ["__name__"], regex: "secret_.*")),
        ]))
        try harness.request("/metrics", headers: [("Accept", "application/vnd.google.protobuf;q=0.9,text/plain;q=0.5")])
        let fetch = try #require(harness.upstream.fetches.first)
        #expect(fetch.headers.first(name: "Accept") == "text/plain;q=0.5",
                "protobuf is not asked of the app")
        #expect(fetch.headers.first(name: "Accept-Encoding") == "identity")
        fetch.send(.head(HTTPResponseHead(version: .http1_1, status: .ok,
                                          headers: ["Content-Type": "text/plain; version=0.0.4"])))
        fetch.send(.body(ByteBuffer(string: "up 1\nsecret_token{a=\"b\"} 2\n")))
        fetch.send(.body(ByteBuffer(string: "other 3\n")))
        fetch.send(.end)
        let response = try harness.response()
        #expect(response.head?.status == .ok)
        #expect(response.head?.headers.first(name: "Transfer-Encoding") == "chunked")
        #expect(response.body == "up 1\nother 3\n")
        #expect(response.ended)
        #expect(harness.channel.isActive, "keep-alive: the connection stays")
        #expect(harness.scrapes("success") == 1)
    }

    @Test func anErrorStatusFromTheAppIsA502() throws {
        let harness = try Harness()
        try harness.request("/metrics")
        let fetch = try #require(harness.upstream.fetches.first)
        fetch.send(.head(HTTPResponseHead(version: .http1_1, status: .internalServerError)))
        let response = try harness.response()
        #expect(response.head?.status == .badGateway)
        #expect(response.body == "upstream answered 500\n")
        #expect(fetch.cancelled, "the rest of the app's answer is not read")
        #expect(harness.scrapes("upstream_error") == 1)
    }

    @Test func aTimeoutBeforeTheHeadIsA504() throws {
        let harness = try Harness()
        try harness.request("/metrics")
        try #require(harness.upstream.fetches.first).send(.failed(.timeout))
        let response = try harness.response()
        #expect(response.head?.status == .gatewayTimeout)
        #expect(harness.scrapes("timeout") == 1)
    }

    @Test func aBodyOverTheLimitCutsTheConnectionWithoutAnEnd() throws {
        let harness = try Harness(bodySizeLimit: 16)
        try harness.request("/metrics")
        let fetch = try #require(harness.upstream.fetches.first)
        fetch.send(.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        fetch.send(.body(ByteBuffer(string: "a_metric 1\n")))
        let before = try harness.response()
        #expect(before.head?.status == .ok)
        #expect(before.body == "a_metric 1\n")
        fetch.send(.body(ByteBuffer(string: "another 2\n")))
        let response = try harness.response()
        #expect(response.body.isEmpty)
        #expect(!response.ended, "a cut body, never a short one that looks complete")
        #expect(!harness.channel.isActive)
        #expect(fetch.cancelled)
        #expect(harness.scrapes("too_large") == 1)
        #expect(harness.scrapes("client_aborted") == 0, "the close that follows records nothing more")
    }

    @Test func theScraperLeavingCancelsTheFetchAndCountsOnce() throws {
        let harness = try Harness()
        try harness.request("/metrics")
        let fetch = try #require(harness.upstream.fetches.first)
        fetch.send(.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        try harness.channel.close().wait()
        #expect(fetch.cancelled)
        fetch.send(.body(ByteBuffer(string: "late 1\n")))
        fetch.send(.end)
        #expect(harness.scrapes("client_aborted") == 1)
        #expect(harness.scrapes("success") == 0)
    }

    @Test func aFailScrapePolicyCutsTheBody() throws {
        let harness = try Harness(filter: FilterPolicy(invalidLines: .failScrape))
        try harness.request("/metrics")
        let fetch = try #require(harness.upstream.fetches.first)
        fetch.send(.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        fetch.send(.body(ByteBuffer(string: "ok 1\nthis is { not a sample\n")))
        #expect(!harness.channel.isActive)
        #expect(fetch.cancelled)
        #expect(harness.scrapes("filter_rejected") == 1)
    }

    /// A scrape that fails before its first filtered byte (a body over the limit, a
    /// line under `fail_scrape`, the app timing out) is still a clean short answer:
    /// the 200 waits for that byte, so the scraper gets a status, not a cut connection.
    @Test(arguments: [
        ("over the limit", HTTPResponseStatus.badGateway, "upstream body exceeds the body size limit\n", "too_large"),
        ("fail_scrape", .badGateway, "the scrape failed the gateway's filter policy\n", "filter_rejected"),
        ("timeout", .gatewayTimeout, "upstream timed out\n", "timeout"),
    ])
    func aScrapeThatFailsBeforeItsFirstByteIsAShortAnswer(_ failure: String, _ status: HTTPResponseStatus,
                                                          _ text: String, _ result: String) throws {
        let harness = try Harness(filter: FilterPolicy(invalidLines: .failScrape), bodySizeLimit: 64)
        try harness.request("/metrics")
        let fetch = try #require(harness.upstream.fetches.first)
        fetch.send(.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        switch failure {
        case "over the limit": fetch.send(.body(ByteBuffer(string: String(repeating: "x", count: 100))))
        case "fail_scrape": fetch.send(.body(ByteBuffer(string: "this is { not a sample\n")))
        default: fetch.send(.failed(.timeout))
        }
        let response = try harness.response()
        #expect(response.head?.status == status)
        #expect(response.body == text && response.ended)
        #expect(harness.channel.isActive, "keep-alive: a clean answer keeps the connection")
        #expect(harness.scrapes(result) == 1)
        #expect(harness.outbound.bytesInUse == 0)
    }

    @Test(arguments: [
        ("/other", HTTPMethod.GET, HTTPResponseStatus.notFound, "not found\n"),
        ("/metrics", .POST, .methodNotAllowed, "method not allowed\n"),
        ("/gateway/metrics", .DELETE, .methodNotAllowed, "method not allowed\n"),
        ("/" + String(repeating: "a", count: 5000), .GET, .uriTooLong, "request target too long\n"),
    ])
    func shortAnswers(_ uri: String, _ method: HTTPMethod, _ status: HTTPResponseStatus, _ text: String) throws {
        let harness = try Harness()
        try harness.request(uri, method: method)
        let response = try harness.response()
        #expect(response.head?.status == status)
        #expect(response.body == text)
        #expect(response.ended)
        #expect(harness.upstream.fetches.isEmpty)
    }

    /// An app that answers in a format the filter cannot read (here protobuf, which it
    /// was not asked for) gets the scraper a 502, counted; not a byte of it is sent.
    @Test(arguments: [
        ["Content-Type": "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"],
        ["Content-Type": "application/json"],
        ["Content-Type": "text/plain; version=0.0.4", "Content-Encoding": "gzip"],
    ])
    func anUnreadableAnswerIsA502(_ headers: [String: String]) throws {
        let harness = try Harness()
        try harness.request("/metrics")
        let fetch = try #require(harness.upstream.fetches.first)
        fetch.send(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: HTTPHeaders(Array(headers)))))
        fetch.send(.body(ByteBuffer(string: "\u{0a}\u{1f}secret_series\u{12}\u{04}help")))
        fetch.send(.end)
        let response = try harness.response()
        #expect(response.head?.status == .badGateway)
        #expect(response.body == "upstream answered in a format the gateway cannot filter\n")
        #expect(String(decoding: harness.metrics.exposition(), as: UTF8.self)
            .contains("scrapeguard_scrapes_total{result=\"upstream_bad_format\"} 1"))
        #expect(fetch.cancelled, "the app's body is not read on")
    }

    /// An app whose Content-Type lies about its body (text, but protobuf or JSON in
    /// it): the filter reads no line of it, and as the `200` waits for the first body
    /// byte, the scraper gets a clean 502, counted, never an empty 200 (which would
    /// make Prometheus mark every series of the target stale).
    @Test(arguments: ["\u{0a}\u{1f}secret_series\u{12}\u{04}help\u{18}\u{01}\u{22}\u{09}\u{0a}\u{07}\u{1a}",
                      "{\"up\": 1, \"requests\": 5}\n"])
    func aBodyThatIsNotWhatItsContentTypeSaysIsA502(_ body: String) throws {
        let harness = try Harness()
        try harness.request("/metrics")
        let fetch = try #require(harness.upstream.fetches.first)
        fetch.send(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Type": "text/plain; version=0.0.4"])))
        fetch.send(.body(ByteBuffer(string: body)))
        fetch.send(.end)
        let response = try harness.response()
        #expect(response.head?.status == .badGateway)
        #expect(response.body == "upstream answered in a format the gateway cannot filter\n")
        #expect(harness.scrapes("upstream_bad_format") == 1 && harness.scrapes("success") == 0)
        #expect(harness.outbound.bytesInUse == 0)
    }

    /// An empty body, or one whose every sample the policy drops, is still the app's
    /// answer: a 200 with what is left (here nothing), not a 502.
    @Test(arguments: ["", "secret_token 1\n"])
    func anEmptyOrFullyFilteredBodyIsA200(_ body: String) throws {
        let harness = try Harness(filter: FilterPolicy(relabelRules: [
            try RelabelRule(.init(action: "drop", sourceLabels: ["__name__"], regex: "secret_.*")),
        ]))
        try harness.request("/metrics")
        let fetch = try #require(harness.upstream.fetches.first)
        fetch.send(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Type": "text/plain; version=0.0.4"])))
        if !body.isEmpty { fetch.send(.body(ByteBuffer(string: body))) }
        fetch.send(.end)
        let response = try harness.response()
        #expect(response.head?.status == .ok && response.body.isEmpty && response.ended)
        #expect(harness.scrapes("success") == 1)
    }

    /// The scraper gets the gateway's Content-Type, whatever parameters the app added.
    @Test func theContentTypeIsTheGateways() throws {
        let harness = try Harness()
        try harness.request("/metrics")
        let fetch = try #require(harness.upstream.fetches.first)
        fetch.send(.head(HTTPResponseHead(version: .http1_1, status: .ok,
                                          headers: ["Content-Type": "text/plain; version=0.0.4; escaping=underscores; x=y"])))
        fetch.send(.body(ByteBuffer(string: "up 1\n")))
        fetch.send(.end)
        let response = try harness.response()
        #expect(response.head?.headers["Content-Type"] == ["text/plain; version=0.0.4; charset=utf-8"])
    }

    /// With `max_buffered_bytes` spent by other scrapers, a new scrape is 503 with
    /// Retry-After, and the app is never asked.
    @Test func aSpentBufferBudgetRefusesANewScrape() throws {
        let harness = try Harness()
        harness.outbound.reserve(1 << 20)
        try harness.request("/metrics")
        let response = try harness.response()
        #expect(response.head?.status == .serviceUnavailable)
        #expect(response.head?.headers["Retry-After"] == ["1"])
        #expect(response.body == "gateway busy\n")
        #expect(harness.upstream.fetches.isEmpty)
        #expect(String(decoding: harness.metrics.exposition(), as: UTF8.self)
            .contains("scrapeguard_scrapes_total{result=\"overloaded\"} 1"))
    }

    /// Body bytes count against the budget from their write until the socket takes
    /// them (an embedded channel takes them on flush): nothing stays counted.
    @Test func bodyBytesAreCountedUntilTaken() throws {
        let harness = try Harness()
        try harness.request("/metrics")
        let fetch = try #require(harness.upstream.fetches.first)
        fetch.send(.head(HTTPResponseHead(version: .http1_1, status: .ok,
                                          headers: ["Content-Type": "text/plain; version=0.0.4"])))
        fetch.send(.body(ByteBuffer(string: "up 1\n")))
        fetch.send(.end)
        #expect(try harness.response().body == "up 1\n")
        #expect(harness.outbound.bytesInUse == 0)
    }

    /// The filter's state (its duplicate-check table grows with the series written)
    /// counts against the budget while the scrape runs, even with no body byte
    /// waiting, and is given back when the scrape ends, whole or cut.
    @Test func theFiltersStateIsCountedUntilTheScrapeEnds() throws {
        let body = (0..<5000).map { "series_\($0) 1\n" }.joined()
        for cut in [false, true] {
            let harness = try Harness()
            try harness.request("/metrics")
            let fetch = try #require(harness.upstream.fetches.first)
            fetch.send(.head(HTTPResponseHead(version: .http1_1, status: .ok,
                                              headers: ["Content-Type": "text/plain; version=0.0.4"])))
            fetch.send(.body(ByteBuffer(string: body)))
            _ = try harness.response()
            let held = harness.outbound.bytesInUse
            #expect(held >= 5000 * 8 && held <= 5000 * 32, "a table for 5,000 series: \(held) bytes")
            if cut {
                try harness.channel.close().wait()
            } else {
                fetch.send(.end)
                #expect(try harness.response().ended)
            }
            #expect(harness.outbound.bytesInUse == 0, "given back (cut: \(cut))")
        }
    }

    /// A scrape that starts while the scraper is not taking bytes starts paused, and
    /// reads once it takes them again: no fetch runs unchecked into a full channel.
    @Test func aFetchFollowsTheScrapersPaceFromItsStart() throws {
        let harness = try Harness()
        harness.channel.isWritable = false
        harness.channel.pipeline.fireChannelWritabilityChanged()
        try harness.request("/metrics")
        let fetch = try #require(harness.upstream.fetches.first)
        #expect(!fetch.reading, "the new fetch is paused at once")
        harness.channel.isWritable = true
        harness.channel.pipeline.fireChannelWritabilityChanged()
        #expect(fetch.reading)
    }

    @Test func ownMetricsNeedNoFetch() throws {
        let harness = try Harness()
        try harness.request("/gateway/metrics")
        let response = try harness.response()
        #expect(response.head?.status == .ok)
        #expect(response.body.contains("scrapeguard_scrapes_total"))
        #expect(harness.upstream.fetches.isEmpty)
    }
}

/// One handler on an `EmbeddedChannel`, with no users (so no bcrypt) and a scripted
/// upstream.
private struct Harness {
    let channel = EmbeddedChannel()
    let upstream: ScriptedUpstream
    let metrics = GatewayMetrics()
    let outbound = OutboundBudget(limit: 1 << 20)

    init(filter: FilterPolicy = FilterPolicy(), bodySizeLimit: Int = 1 << 20) throws {
        let configuration = UpstreamConfiguration(bodySizeLimit: bodySizeLimit)
        upstream = ScriptedUpstream(configuration: configuration)
        let policy = GatewayRequestPolicy(
            authenticator: BasicAuthenticator(users: [:], pool: NIOThreadPool(numberOfThreads: 1)),
            rateLimiter: nil,
            upstream: UpstreamClient(configuration: configuration),
            fetcher: upstream,
            filter: PolicyScrapeFilter(policy: filter, metrics: metrics),
            metricsPath: "/metrics",
            maximumRequestLine: 4096,
            responseHeaders: [],
            outbound: outbound,
            metrics: metrics,
            health: GatewayHealth(),
            logger: Logger(label: "test"))
        try channel.pipeline.syncOperations.addHandler(GatewayHTTPHandler(policy: policy))
        // An embedded channel is active once connected: a test can then see it close.
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9443)).wait()
        try #require(channel.isActive)
    }

    func request(_ uri: String, method: HTTPMethod = .GET, headers: [(String, String)] = []) throws {
        try channel.writeInbound(HTTPServerRequestPart.head(
            HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders([("Host", "gateway")] + headers))))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
    }

    struct Response {
        var head: HTTPResponseHead?
        var body = ""
        var ended = false
    }

    /// Everything written so far.
    func response() throws -> Response {
        var response = Response()
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
            switch part {
            case .head(let head): response.head = head
            case .body(.byteBuffer(let buffer)): response.body += String(buffer: buffer)
            case .body: break
            case .end: response.ended = true
            }
        }
        return response
    }

    /// `scrapeguard_scrapes_total{result=…}` as the gateway's own metrics say it.
    func scrapes(_ result: String) -> Int {
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        let prefix = "scrapeguard_scrapes_total{result=\"\(result)\"} "
        return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) } ?? 0
    }
}

/// An upstream whose fetches the test drives by hand.
private final class ScriptedUpstream: UpstreamFetching, @unchecked Sendable {
    // @unchecked: used on the embedded event loop's thread only.
    let configuration: UpstreamConfiguration
    private(set) var fetches: [ScriptedFetch] = []

    init(configuration: UpstreamConfiguration) {
        self.configuration = configuration
    }

    func fetch(method: HTTPMethod, query: String?, headers: HTTPHeaders, timeout: TimeAmount, on eventLoop: EventLoop,
               receiver: UpstreamEventReceiver) -> UpstreamFetchControl {
        let fetch = ScriptedFetch(method: method, query: query, headers: headers, receiver: receiver)
        fetches.append(fetch)
        return fetch
    }
}

private final class ScriptedFetch: UpstreamFetchControl {
    let method: HTTPMethod
    let query: String?
    let headers: HTTPHeaders
    private weak var receiver: UpstreamEventReceiver?
    private(set) var cancelled = false
    private(set) var reading = true

    init(method: HTTPMethod, query: String?, headers: HTTPHeaders, receiver: UpstreamEventReceiver) {
        self.method = method
        self.query = query
        self.headers = headers
        self.receiver = receiver
    }

    /// Delivers an event as the real fetch would: none once cancelled.
    func send(_ event: UpstreamEvent) {
        guard !cancelled else { return }
        receiver?.upstream(event)
    }

    func setReading(_ reading: Bool) {
        self.reading = reading
    }

    func cancel() {
        cancelled = true
    }
}
