import GatewayTLS
import Logging
import NIOCore
import NIOHTTP1

/// What every connection's HTTP handler shares: built once per configuration.
struct GatewayRequestPolicy: Sendable {
    var authenticator: BasicAuthenticator
    var rateLimiter: RateLimiter?
    var upstream: UpstreamClient
    var filter: any ScrapeBodyFilter
    var metricsPath: String
    var maximumRequestLine: Int
    /// From web-config's `http_server_config.headers`, added to every response.
    var responseHeaders: [(String, String)]
    var metrics: GatewayMetrics
    var health: GatewayHealth
    var logger: Logger
}

/// Serves one HTTP/1.1 connection behind TLS: rate limit, then basic auth, then the
/// route. The metrics path streams the app's body through the filter to the client;
/// every other answer is a short fixed text that echoes nothing from the request.
final class GatewayHTTPHandler: ChannelInboundHandler, UpstreamResponseDelegate {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let policy: GatewayRequestPolicy
    private var context: ChannelHandlerContext?
    private var peer: PeerIdentity?

    private var requestHead: HTTPRequestHead?
    private var fetch: UpstreamFetch?
    private var transform: (any ScrapeBodyTransform)?
    private var sentResponseHead = false
    private var upstreamBodyBytes = 0
    private var sentBodyBytes = 0
    private var fetchStarted: NIODeadline?
    private var gzip: GzipEncoder?

    init(policy: GatewayRequestPolicy) {
        self.policy = policy
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        fetch?.cancel()
        fetch = nil
        self.context = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSHandshakeCompletedEvent {
            peer = event.peer
            policy.metrics.handshakeCompleted()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            requestHead = head
            context.triggerUserOutboundEvent(RequestCycleEvent.requestHeadReceived, promise: nil)
        case .body:
            break  // scrapes have no body; whatever is sent is discarded unread
        case .end:
            guard let head = requestHead else { return }
            admit(head, context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        fetch?.setReading(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    /// An unparseable request (NIO's protocol error handler has already answered 400)
    /// or any other error ends the connection: nothing on it can be trusted.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        policy.logger.debug("connection error", metadata: ["error": "\(type(of: error))"])
        fetch?.cancel()
        fetch = nil
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if fetch != nil || sentResponseHead {
            policy.metrics.scrapeEnded(.clientAborted)
        }
        fetch?.cancel()
        fetch = nil
        context.fireChannelInactive()
    }

    // MARK: - Admission and routing

    private func admit(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        if head.uri.utf8.count > policy.maximumRequestLine {
            respond(.uriTooLong, "request target too long\n")
            return
        }
        if let limiter = policy.rateLimiter, !limiter.tryAcquire() {
            respond(.tooManyRequests, "too many requests\n", extraHeaders: [("Retry-After", "1")])
            return
        }
        guard policy.authenticator.isEnabled else {
            route(head)
            return
        }
        policy.authenticator.authenticate(authorization: head.headers.first(name: "Authorization"), on: context.eventLoop)
            .assumeIsolated()
            .whenSuccess { outcome in
                switch outcome {
                case .allowed:
                    self.route(head)
                case .overloaded:
                    self.respond(.serviceUnavailable, "authentication overloaded\n", extraHeaders: [("Retry-After", "1")])
                default:
                    self.policy.metrics.authenticationFailed(reason: outcome.failureReason ?? "unknown")
                    self.policy.logger.info("authentication failed", metadata: [
                        "reason": "\(outcome.failureReason ?? "")",
                        "peer_san": "\(self.peer?.subjectAlternativeNames.first ?? "")",
                    ])
                    self.respond(.unauthorized, "unauthorized\n",
                                 extraHeaders: [("WWW-Authenticate", "Basic realm=\"scrapeguard\", charset=\"UTF-8\"")])
                }
            }
    }

    private func route(_ head: HTTPRequestHead) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        if path == "/gateway/metrics" {
            guard head.method == .GET || head.method == .HEAD else {
                respond(.methodNotAllowed, "method not allowed\n", extraHeaders: [("Allow", "GET, HEAD")])
                return
            }
            respondWithOwnMetrics()
            return
        }
        guard path == policy.metricsPath else {
            respond(.notFound, "not found\n")
            return
        }
        guard head.method == .GET || head.method == .HEAD else {
            respond(.methodNotAllowed, "method not allowed\n", extraHeaders: [("Allow", "GET, HEAD")])
            return
        }
        startProxy(head)
    }

    // MARK: - Proxy

    private func startProxy(_ head: HTTPRequestHead) {
        guard let context else { return }
        var upstreamHeaders = HTTPHeaders()
        upstreamHeaders.add(name: "Accept", value: Self.upstreamAccept(head.headers.first(name: "Accept")))
        upstreamHeaders.add(name: "Accept-Encoding", value: "identity")
        upstreamHeaders.add(name: "User-Agent", value: "scrapeguard")
        if let timeout = head.headers.first(name: "X-Prometheus-Scrape-Timeout-Seconds") {
            upstreamHeaders.add(name: "X-Prometheus-Scrape-Timeout-Seconds", value: timeout)
        }
        let timeout = ScrapeTimeout.effective(headers: head.headers, configured: policy.upstream.configuration.scrapeTimeout)
        sentResponseHead = false
        upstreamBodyBytes = 0
        sentBodyBytes = 0
        fetchStarted = .now()
        gzip = head.method == .GET && GzipEncoder.accepts(head.headers.first(name: "Accept-Encoding")) ? GzipEncoder() : nil
        fetch = policy.upstream.fetch(
            method: head.method == .HEAD ? .HEAD : .GET, headers: upstreamHeaders,
            timeout: .nanoseconds(timeout.nanoseconds), on: context.eventLoop, delegate: self)
    }

    /// The scraper's Accept header without protobuf, which the filter cannot read:
    /// the app then answers in OpenMetrics or the text format.
    static func upstreamAccept(_ accept: String?) -> String {
        let fallback = "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        guard let accept else { return fallback }
        let kept = accept.split(separator: ",").filter {
            !$0.lowercased().contains("application/vnd.google.protobuf")
        }
        return kept.isEmpty ? fallback : kept.joined(separator: ",")
    }

    func upstreamResponseHead(_ head: HTTPResponseHead) {
        policy.health.upstreamAnswered()
        guard head.status == .ok else {
            abandonFetch()
            policy.metrics.scrapeEnded(.upstreamError)
            policy.logger.warning("upstream answered with an error status", metadata: ["status": "\(head.status.code)"])
            respond(.badGateway, "upstream answered \(head.status.code)\n")
            return
        }
        if let length = head.headers.first(name: "Content-Length").flatMap(Int.init), length > policy.upstream.configuration.bodySizeLimit {
            abandonFetch()
            policy.metrics.scrapeEnded(.tooLarge)
            policy.logger.warning("upstream body exceeds body_size_limit", metadata: ["content_length": "\(length)"])
            respond(.badGateway, "upstream body exceeds the body size limit\n")
            return
        }
        let contentType = head.headers.first(name: "Content-Type")
        transform = policy.filter.makeTransform(contentType: contentType)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType ?? "text/plain; version=0.0.4; charset=utf-8")
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "Vary", value: "Accept-Encoding")
        if gzip != nil {
            headers.add(name: "Content-Encoding", value: "gzip")
        }
        addCommonHeaders(&headers)
        if requestHead?.method != .HEAD {
            headers.add(name: "Transfer-Encoding", value: "chunked")
        }
        sentResponseHead = true
        write(.head(HTTPResponseHead(version: requestHead?.version ?? .http1_1, status: .ok, headers: headers)))
    }

    func upstreamResponseBody(_ buffer: ByteBuffer) {
        guard let context, requestHead?.method != .HEAD else { return }
        upstreamBodyBytes += buffer.readableBytes
        if upstreamBodyBytes > policy.upstream.configuration.bodySizeLimit {
            policy.logger.warning("upstream body exceeds body_size_limit: response aborted",
                                  metadata: ["limit": "\(policy.upstream.configuration.bodySizeLimit)"])
            policy.metrics.scrapeEnded(.tooLarge)
            sentResponseHead = false
            abandonFetch()
            abortConnection()
            return
        }
        if let output = transform?.process(buffer), output.readableBytes > 0 {
            sentBodyBytes += output.readableBytes
            send(output, finish: false, context: context)
        }
        if transform?.shouldFailScrape == true {
            failByFilter()
            return
        }
        if !context.channel.isWritable {
            fetch?.setReading(false)
        }
    }

    func upstreamResponseEnd() {
        fetch = nil
        if requestHead?.method != .HEAD {
            let output = transform?.finish()
            if transform?.shouldFailScrape == true {
                failByFilter()
                return
            }
            if let output, output.readableBytes > 0 {
                sentBodyBytes += output.readableBytes
            }
            if let context, output != nil || gzip != nil {
                send(output, finish: true, context: context)
            }
        }
        gzip = nil
        transform = nil
        if let started = fetchStarted {
            policy.metrics.upstreamFetched(duration: .nanoseconds((NIODeadline.now() - started).nanoseconds), bytes: upstreamBodyBytes)
        }
        policy.metrics.bodySent(bytes: sentBodyBytes)
        policy.metrics.scrapeEnded(.success)
        finishResponse()
    }

    func upstreamFailed(_ error: UpstreamError) {
        fetch = nil
        transform = nil
        policy.logger.warning("upstream fetch failed", metadata: ["error": "\(error)"])
        if case .timeout = error {
            policy.metrics.scrapeEnded(.timeout)
        } else {
            policy.metrics.scrapeEnded(.upstreamError)
        }
        guard !sentResponseHead else {
            sentResponseHead = false
            // The status line is gone already: the only honest signal left is to
            // cut the connection, so the scraper sees an incomplete body.
            abortConnection()
            return
        }
        switch error {
        case .timeout:
            respond(.gatewayTimeout, "upstream timed out\n")
        case .connectFailed, .connectionClosed, .protocolError:
            respond(.badGateway, "upstream unavailable\n")
        }
    }

    /// The policy failed this scrape: the body is cut, so the scraper sees an error.
    private func failByFilter() {
        policy.logger.warning("the filter policy failed the scrape (an unreadable line under invalid_lines: fail_scrape)")
        policy.metrics.scrapeEnded(.filterRejected)
        sentResponseHead = false
        abandonFetch()
        abortConnection()
    }

    /// Writes filtered body bytes, through gzip when the scraper asked for it.
    private func send(_ output: ByteBuffer?, finish: Bool, context: ChannelHandlerContext) {
        if let gzip {
            let compressed = gzip.encode(output, finish: finish, allocator: context.channel.allocator)
            if compressed.readableBytes > 0 {
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(compressed))), promise: nil)
            }
        } else if let output, output.readableBytes > 0 {
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(output))), promise: nil)
        }
    }

    private func abandonFetch() {
        fetch?.cancel()
        fetch = nil
        transform = nil
    }

    private func respondWithOwnMetrics() {
        guard let context else { return }
        let body = policy.metrics.exposition()
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(body.count)")
        headers.add(name: "Cache-Control", value: "no-store")
        addCommonHeaders(&headers)
        write(.head(HTTPResponseHead(version: requestHead?.version ?? .http1_1, status: .ok, headers: headers)))
        if requestHead?.method != .HEAD {
            write(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body))))
        }
        finishResponse()
    }

    // MARK: - Writing

    private func respond(_ status: HTTPResponseStatus, _ text: String, extraHeaders: [(String, String)] = []) {
        guard let context else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(text.utf8.count)")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        addCommonHeaders(&headers)
        write(.head(HTTPResponseHead(version: requestHead?.version ?? .http1_1, status: status, headers: headers)))
        if requestHead?.method != .HEAD {
            var body = context.channel.allocator.buffer(capacity: text.utf8.count)
            body.writeString(text)
            write(.body(.byteBuffer(body)))
        }
        finishResponse()
    }

    private func addCommonHeaders(_ headers: inout HTTPHeaders) {
        for (name, value) in policy.responseHeaders where !headers.contains(name: name) {
            headers.add(name: name, value: value)
        }
        if !(requestHead?.isKeepAlive ?? false) {
            headers.replaceOrAdd(name: "Connection", value: "close")
        }
    }

    private func write(_ part: HTTPServerResponsePart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    private func finishResponse() {
        guard let context else { return }
        let keepAlive = requestHead?.isKeepAlive ?? false
        requestHead = nil
        sentResponseHead = false
        // Before the end is written: writing it may hand us a pipelined request at once.
        context.triggerUserOutboundEvent(RequestCycleEvent.responseCompleted, promise: nil)
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    private func abortConnection() {
        context?.close(promise: nil)
    }
}
