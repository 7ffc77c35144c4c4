import GatewayTLS
import Logging
import MetricsFilter
import NIOCore
import NIOHTTP1

/// Serves one HTTP/1.1 connection behind TLS. What to do is `ScrapeStateMachine`'s
/// decision; this handler feeds it the connection's and the app's events and carries
/// out its actions: asking the rate limiter and the authenticator, fetching, running
/// the body through the filter (and gzip), writing, closing, counting.
///
/// About 400 lines because it carries out every action of `ScrapeStateMachine` and
/// the I/O around them (the fetch's pace, the buffer budget); no decision is made
/// here that the machine could make.
final class GatewayHTTPHandler: ChannelInboundHandler, UpstreamEventReceiver {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let policy: GatewayRequestPolicy
    private var machine: ScrapeStateMachine
    private var context: ChannelHandlerContext?
    private var peer: PeerIdentity?

    /// The request being answered (its version and keep-alive shape the response).
    private var request: HTTPRequestHead?
    private var fetch: UpstreamFetchControl?
    private var transform: (any ScrapeBodyTransform)?
    private var gzip: GzipEncoder?
    private var sentBodyBytes = 0
    /// Body bytes written toward the scraper that the socket has not taken yet.
    private var pendingBytes = 0
    /// The transform's state bytes, as last counted in the buffer budget.
    private var chargedStateBytes = 0
    /// The streamed response's `200` head, held until its first body byte: a body the
    /// filter reads nothing of (a Content-Type that lies) is then still a clean 502.
    private var heldHead: HTTPResponseHead?
    /// Whether reading from the app is paused, for the scraper or for the budget.
    private var readingPaused = false
    private var fetchStarted: NIODeadline?

    /// Called once, when the connection's first request passes admission.
    private let onProven: () -> Void

    init(policy: GatewayRequestPolicy, onProven: @escaping () -> Void = {}) {
        self.policy = policy
        self.onProven = onProven
        self.machine = ScrapeStateMachine(configuration: policy.scrapeConfiguration)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelFetch()
        endScrape()
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
            request = head
            context.triggerUserOutboundEvent(RequestCycleEvent.requestHeadReceived, promise: nil)
            run(machine.requestHead(head))
        case .body:
            break  // scrapes have no body; whatever is sent is discarded unread
        case .end:
            run(machine.requestEnd())
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        updateReading(context: context)
        context.fireChannelWritabilityChanged()
    }

    /// An unparseable request (NIO's protocol error handler has already answered 400)
    /// or any other error ends the connection: nothing on it can be trusted.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        policy.logger.debug("connection error", metadata: ["error": "\(type(of: error))"])
        run(machine.errorCaught())
    }

    func channelInactive(context: ChannelHandlerContext) {
        run(machine.connectionClosed())
        context.fireChannelInactive()
    }

    // MARK: - The app's events

    func upstream(_ event: UpstreamEvent) {
        switch event {
        case .head(let head):
            policy.health.upstreamAnswered()
            run(machine.upstreamHead(head))
        case .body(let buffer):
            run(machine.upstreamBody(bytes: buffer.readableBytes), body: buffer)
        case .end:
            fetch = nil
            run(machine.upstreamEnd())
        case .failed(let error):
            fetch = nil
            policy.logger.warning("upstream fetch failed", metadata: ["error": "\(error)"])
            run(machine.upstreamFailed(error))
        }
    }

    // MARK: - Carrying out actions

    private func run(_ action: ScrapeStateMachine.Action, body: ByteBuffer? = nil) {
        switch action {
        case .none:
            break
        case .admitted(let next):
            onProven()
            run(next, body: body)
        case .consultRateLimiter(let identity):
            let key: RateLimiter.Key = identity.map { .identity($0) }
                ?? .source(context?.channel.remoteAddress?.ipAddress ?? "unknown")
            run(machine.rateLimiterAnswered(allowed: policy.rateLimiter?.tryAcquire(key) ?? true))
        case .authenticate(let authorization):
            guard let context else { return }
            policy.authenticator.authenticate(authorization: authorization, on: context.eventLoop)
                .assumeIsolated()
                .whenSuccess { outcome in self.run(self.machine.authenticated(outcome)) }
        case .respond(let answer, let result, let closeAfter):
            cancelFetch()
            endScrape()  // a scrape that fails before its first byte is answered here
            if let result { policy.metrics.scrapeEnded(result) }
            if let reason = answer.refusalReason { policy.metrics.requestRefused(reason: reason) }
            switch answer {
            case .unauthorized(let reason):
                policy.metrics.authenticationFailed(reason: reason)
                policy.logger.info("authentication failed", metadata: [
                    "reason": "\(reason)", "peer_san": "\(peer?.subjectAlternativeNames.first ?? "")",
                ])
            case .upstreamStatus(let code):
                policy.logger.warning("upstream answered with an error status", metadata: ["status": "\(code)"])
            case .upstreamBadFormat(let reason):
                policy.logger.warning("upstream answered in a format the filter cannot read: 502",
                                      metadata: ["reason": "\(reason)"])
            case .upstreamTooLarge:
                policy.logger.warning("upstream body exceeds body_size_limit",
                                      metadata: ["limit": "\(policy.fetcher.configuration.bodySizeLimit)"])
            case .failedByPolicy:
                policy.logger.warning("the filter policy failed the scrape (an unreadable line under invalid_lines: fail_scrape)")
            default:
                break
            }
            respond(answer, closeAfter: closeAfter)
        case .serveOwnMetrics(let closeAfter):
            respondWithOwnMetrics(closeAfter: closeAfter)
        case .startFetch(let head, let query):
            if policy.outbound.isSpent {
                run(machine.outboundBudgetSpent())
            } else {
                startFetch(head, query: query)
            }
        case .sendResponseHead(_, let format, let contentType, let names):
            sendResponseHead(format: format, contentType: contentType, names: names)
        case .forwardBody:
            if let body { forward(body) }
        case .flushFilter:
            flushFilter()
        case .finishResponse(let result, let upstreamBytes, let closeAfter):
            if let started = fetchStarted {
                policy.metrics.upstreamFetched(duration: .nanoseconds((NIODeadline.now() - started).nanoseconds),
                                               bytes: upstreamBytes)
            }
            policy.metrics.bodySent(bytes: sentBodyBytes)
            policy.metrics.scrapeEnded(result)
            releaseHead()
            endScrape()
            finishResponse(closeAfter: closeAfter)
        case .abort(let result):
            switch result {
            case .tooLarge:
                policy.logger.warning("upstream body exceeds body_size_limit: response aborted",
                                      metadata: ["limit": "\(policy.fetcher.configuration.bodySizeLimit)"])
            case .filterRejected:
                policy.logger.warning("the filter policy failed the scrape (an unreadable line under invalid_lines: fail_scrape)")
            default:
                break
            }
            policy.metrics.scrapeEnded(result)
            cancelFetch()
            endScrape()
            // The status line is gone already: the only honest signal left is to cut
            // the connection, so the scraper sees an incomplete body.
            context?.close(promise: nil)
        case .abandon(let result):
            if let result { policy.metrics.scrapeEnded(result) }
            cancelFetch()
            endScrape()
        case .close:
            cancelFetch()
            context?.close(promise: nil)
        }
    }

    private func startFetch(_ head: HTTPRequestHead, query: String?) {
        guard let context else { return }
        var upstreamHeaders = HTTPHeaders()
        upstreamHeaders.add(name: "Accept",
                            value: UpstreamNegotiation.upstreamAccept(forScraper: head.headers.first(name: "Accept"),
                                                                      protobuf: policy.filter.readsProtobuf))
        upstreamHeaders.add(name: "Accept-Encoding", value: "identity")
        upstreamHeaders.add(name: "User-Agent", value: "scrapeguard")
        if let timeout = head.headers.first(name: "X-Prometheus-Scrape-Timeout-Seconds") {
            upstreamHeaders.add(name: "X-Prometheus-Scrape-Timeout-Seconds", value: timeout)
        }
        let timeout = ScrapeTimeout.effective(headers: head.headers, configured: policy.fetcher.configuration.scrapeTimeout)
        sentBodyBytes = 0
        fetchStarted = .now()
        gzip = head.method == .GET && GzipEncoder.accepts(head.headers.first(name: "Accept-Encoding")) ? GzipEncoder() : nil
        fetch = policy.fetcher.fetch(
            method: head.method == .HEAD ? .HEAD : .GET, query: query, headers: upstreamHeaders,
            timeout: .nanoseconds(timeout.nanoseconds), on: context.eventLoop, receiver: self)
        // A new fetch reads unless told otherwise: align it with this scraper now (a
        // previous scrape may have ended paused).
        readingPaused = false
        updateReading(context: context)
    }

    /// The scrape's response head: the Content-Type is the one the gateway writes (the
    /// format the filter read and writes), never the app's copied.
    private func sendResponseHead(format: ScrapeFormat, contentType: String, names: NameEscaping) {
        transform = policy.filter.makeTransform(format: format, names: names)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "Vary", value: "Accept-Encoding")
        if gzip != nil {
            headers.add(name: "Content-Encoding", value: "gzip")
        }
        addCommonHeaders(&headers)
        if request?.method != .HEAD {
            headers.add(name: "Transfer-Encoding", value: "chunked")
        }
        heldHead = HTTPResponseHead(version: request?.version ?? .http1_1, status: .ok, headers: headers)
        // A HEAD has no body to wait for.
        if request?.method == .HEAD { releaseHead() }
    }

    /// Writes the held `200` head: the first body byte is on its way, or the body
    /// ended and the filter read it.
    private func releaseHead() {
        guard let head = heldHead else { return }
        heldHead = nil
        machine.responseHeadWritten()
        write(.head(head))
    }

    private func forward(_ buffer: ByteBuffer) {
        guard let context else { return }
        if let output = transform?.process(buffer), output.readableBytes > 0 {
            sentBodyBytes += output.readableBytes
            send(output, finish: false, context: context)
        }
        chargeTransformState()
        if transform?.shouldFailScrape == true {
            run(machine.filterFailed())
            return
        }
        updateReading(context: context)
    }

    /// Reads from the app while the scraper keeps up and the buffer budget allows; a
    /// scrape with nothing waiting may always go on (`OutboundBudget`).
    private func updateReading(context: ChannelHandlerContext) {
        let pause = !context.channel.isWritable || (pendingBytes > 0 && policy.outbound.isSpent)
        guard pause != readingPaused else { return }
        readingPaused = pause
        fetch?.setReading(!pause)
    }

    private func flushFilter() {
        let output = transform?.finish()
        if transform?.shouldFailScrape == true {
            run(machine.filterFailed())
            return
        }
        if heldHead != nil, transform?.readNothing == true {
            heldHead = nil
            endScrape()
            run(machine.bodyUnreadable())
            return
        }
        if let output, output.readableBytes > 0 {
            sentBodyBytes += output.readableBytes
        }
        if let context, output != nil || gzip != nil {
            send(output, finish: true, context: context)
        }
        run(machine.filterFlushed())
    }

    /// Writes filtered body bytes, through gzip when the scraper asked for it.
    private func send(_ output: ByteBuffer?, finish: Bool, context: ChannelHandlerContext) {
        var body = output
        if let gzip {
            body = gzip.encode(output, finish: finish, allocator: context.channel.allocator)
        }
        guard let body, body.readableBytes > 0 else { return }
        releaseHead()
        let bytes = body.readableBytes
        pendingBytes += bytes
        policy.outbound.reserve(bytes)
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenComplete { _ in
            self.pendingBytes -= bytes
            self.policy.outbound.release(bytes)
            if self.context != nil { self.updateReading(context: context) }
        }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(body))), promise: written)
    }

    /// Counts the transform's state in the buffer budget: it grows with the series
    /// written, and a scraper that stops reading would otherwise hold it unseen.
    private func chargeTransformState() {
        let bytes = transform?.retainedBytes ?? 0
        guard bytes != chargedStateBytes else { return }
        policy.outbound.reserve(bytes - chargedStateBytes)
        chargedStateBytes = bytes
    }

    private func cancelFetch() {
        fetch?.cancel()
        fetch = nil
    }

    /// Forgets the scrape's filter and gzip state.
    private func endScrape() {
        heldHead = nil
        transform = nil
        chargeTransformState()
        gzip = nil
        fetchStarted = nil
    }

    private func respondWithOwnMetrics(closeAfter: Bool) {
        let response = FixedResponse(.ok, contentType: "text/plain; version=0.0.4; charset=utf-8",
                                     body: policy.metrics.exposition(), headers: [("Cache-Control", "no-store")])
        write(response, closeAfter: closeAfter)
    }

    // MARK: - Writing

    private func respond(_ answer: ShortAnswer, closeAfter: Bool) {
        let response = FixedResponse(answer.status, text: answer.text,
                                     headers: [("X-Content-Type-Options", "nosniff")] + answer.headers)
        write(response, closeAfter: closeAfter)
    }

    private func write(_ response: FixedResponse, closeAfter: Bool) {
        guard let context else { return }
        for part in response.parts(answering: request, extraHeaders: policy.responseHeaders,
                                   allocator: context.channel.allocator) {
            write(part)
        }
        finishResponse(closeAfter: closeAfter)
    }

    /// The operator's response headers, and `Connection: close` unless the request
    /// keeps the connection alive: for the streamed scrape's head (a `FixedResponse`
    /// adds them itself).
    private func addCommonHeaders(_ headers: inout HTTPHeaders) {
        for (name, value) in policy.responseHeaders where !headers.contains(name: name) {
            headers.add(name: name, value: value)
        }
        if !(request?.isKeepAlive ?? false) {
            headers.replaceOrAdd(name: "Connection", value: "close")
        }
    }

    private func write(_ part: HTTPServerResponsePart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    private func finishResponse(closeAfter: Bool) {
        guard let context else { return }
        request = nil
        // Before the end is written: writing it may hand us a pipelined request at once.
        context.triggerUserOutboundEvent(RequestCycleEvent.responseCompleted, promise: nil)
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if closeAfter {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
