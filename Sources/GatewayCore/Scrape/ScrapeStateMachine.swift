import MetricsFilter
import NIOHTTP1

/// One connection's requests, one at a time, as a value (postgres-nio's pattern): the
/// handler tells it what happened, it answers with the one `Action` to take, and the
/// handler only carries actions out. It alone decides when a scrape has ended and
/// how, so each scrape's result is recorded exactly once.
///
/// ```
/// idle ─head→ receiving ─end→ admitting ─(source's rate limit, credentials)→ limiting
///   limiting ─(identity's and total rate limit)→ route
///   idle ─head with a body, or without one Host→ 413/400 → closed
///   route: own metrics, or a short answer ───────────────────────────→ idle | closed
///   route: the metrics path → fetching ─upstream head 200→ streaming ─end→ finishing
///   finishing ─filter flushed→ idle | closed          (result: success)
///   finishing ─no line readable, no byte out yet→ 502 → idle | closed
///   fetching ─error status, too large, unreadable format, budget spent, failure→
///            short answer → idle | closed
///   streaming/finishing ─too large, filter failed, upstream failed→
///            short answer while no byte is out, else closed (abort)
///   fetching/streaming/finishing ─client gone→ closed  (result: client aborted)
/// ```
///
/// About 360 lines: every state × event of a request, in one place, is the point.
struct ScrapeStateMachine {
    struct Configuration: Sendable {
        var maximumRequestLine: Int
        var metricsPath: String
        var authenticationEnabled: Bool
        var bodySizeLimit: Int
        var allowedQueryParameters: Set<String> = []
        /// The policy filters protobuf (`FilterPolicy.readsProtobuf`): it is asked for,
        /// and taken, only then.
        var readsProtobuf = true
    }

    enum State {
        case idle
        /// The head is read; a body, if any, is discarded until the request ends.
        case receiving(HTTPRequestHead)
        /// The source's rate limit or the credentials are being asked.
        case admitting(HTTPRequestHead)
        /// The credentials passed; the identity's (and the total) rate limit is asked.
        case limiting(HTTPRequestHead, identity: String)
        /// The app is asked; its response head has not come.
        case fetching(HTTPRequestHead)
        /// The response head is out; the body flows through the filter.
        case streaming(HTTPRequestHead, upstreamBytes: Int)
        /// The app's body ended; the filter's last output is being flushed.
        case finishing(HTTPRequestHead, upstreamBytes: Int)
        case closed
    }

    indirect enum Action {
        case none
        /// The connection's first request passed admission: the connection is proven
        /// (`ConnectionAdmission`). Then carry out the action inside.
        case admitted(Action)
        /// Ask the rate limiter for the request's source (identity nil: credentials
        /// not yet checked) or for its authenticated identity and the total, then
        /// call `rateLimiterAnswered`.
        case consultRateLimiter(identity: String?)
        /// Check these credentials, then call `authenticated`.
        case authenticate(authorization: String?)
        /// A short answer, then the response ends; with a result, the scrape ended so.
        case respond(ShortAnswer, result: GatewayMetrics.ScrapeResult?, closeAfter: Bool)
        /// The gateway's own metrics, then the response ends.
        case serveOwnMetrics(closeAfter: Bool)
        /// Ask the app, passing on `query` (the allowed parameters, or nil); its
        /// events come back through `upstream…`.
        case startFetch(HTTPRequestHead, query: String?)
        /// The app answered in a format the filter reads: write the response head,
        /// saying `contentType`, and set up the filter for `format`.
        case sendResponseHead(HTTPResponseHead, format: ScrapeFormat, contentType: String, names: NameEscaping)
        /// Pass this body part through the filter to the scraper.
        case forwardBody
        /// Flush the filter's last output, then call `filterFlushed` or `filterFailed`.
        case flushFilter
        /// The scrape ended with this result, after this much of the app's body: write
        /// the response's end.
        case finishResponse(GatewayMetrics.ScrapeResult, upstreamBytes: Int, closeAfter: Bool)
        /// The scrape ended with this result after its status line went out: cancel
        /// the fetch and cut the connection, so the scraper sees a broken body.
        case abort(GatewayMetrics.ScrapeResult)
        /// The scraper is gone: cancel the fetch and record this result (nil: no
        /// scrape was under way).
        case abandon(GatewayMetrics.ScrapeResult?)
        /// Something on the connection cannot be trusted: cancel and close.
        case close
    }

    private(set) var state = State.idle
    /// The streamed response's head is out (`responseHeadWritten`).
    private var responseStarted = false
    /// Whether a request on this connection passed admission.
    private(set) var proven = false
    let configuration: Configuration

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    // MARK: The request

    /// The head alone decides whether a request is refused outright: no body byte is
    /// ever waited for. A refusal for a malformed request (`Host`) or an announced body
    /// closes the connection: what follows on it cannot be framed with confidence.
    mutating func requestHead(_ head: HTTPRequestHead) -> Action {
        guard case .idle = state else { return .none }
        if let refusal = Self.headRefusal(head) {
            state = .closed
            return .respond(refusal, result: nil, closeAfter: true)
        }
        if head.uri.utf8.count > configuration.maximumRequestLine {
            return answer(.requestTargetTooLong, to: head)
        }
        state = .receiving(head)
        return .none
    }

    mutating func requestEnd() -> Action {
        guard case .receiving(let head) = state else { return .none }
        state = .admitting(head)
        return .consultRateLimiter(identity: nil)
    }

    /// RFC 9112 §3.2: an HTTP/1.1 request without a `Host`, or with more than one, is
    /// answered 400. A scrape is a `GET` without a body: any announced body (a length
    /// above zero, any transfer coding) is 413 at once, so an unauthenticated client
    /// cannot hold a connection open by promising bytes it never sends.
    static func headRefusal(_ head: HTTPRequestHead) -> ShortAnswer? {
        let hosts = head.headers["Host"].count
        if head.version.major == 1 && head.version.minor >= 1 {
            if hosts == 0 { return .missingHost }
        }
        if hosts > 1 { return .repeatedHost }
        if head.headers.contains(name: "Transfer-Encoding") { return .requestBodyNotAllowed }
        if head.headers["Content-Length"].contains(where: { Int($0) != 0 }) {
            return .requestBodyNotAllowed
        }
        return nil
    }

    mutating func rateLimiterAnswered(allowed: Bool) -> Action {
        switch state {
        case .admitting(let head):
            guard allowed else { return answer(.tooManyRequests, to: head) }
            guard configuration.authenticationEnabled else {
                // No credentials to check: every request is the same anonymous one.
                state = .limiting(head, identity: "")
                return .consultRateLimiter(identity: "")
            }
            return .authenticate(authorization: head.headers.first(name: "Authorization"))
        case .limiting(let head, _):
            guard allowed else { return answer(.tooManyRequests, to: head) }
            return admit(head)
        default:
            return .none
        }
    }

    mutating func authenticated(_ outcome: BasicAuthenticator.Outcome) -> Action {
        guard case .admitting(let head) = state else { return .none }
        switch outcome {
        case .allowed(let user):
            state = .limiting(head, identity: user)
            return .consultRateLimiter(identity: user)
        case .overloaded: return answer(.authenticationOverloaded, to: head)
        default: return answer(.unauthorized(reason: outcome.failureReason ?? "unknown"), to: head)
        }
    }

    private mutating func admit(_ head: HTTPRequestHead) -> Action {
        let next = route(head)
        guard !proven else { return next }
        proven = true
        return .admitted(next)
    }

    private mutating func route(_ head: HTTPRequestHead) -> Action {
        switch ScrapeRoute(head, metricsPath: configuration.metricsPath) {
        case .ownMetrics:
            state = head.isKeepAlive ? .idle : .closed
            return .serveOwnMetrics(closeAfter: !head.isKeepAlive)
        case .scrape:
            switch ScrapeQuery.check(uri: head.uri, allowed: configuration.allowedQueryParameters) {
            case .failure:
                return answer(.queryParameterNotAllowed, to: head)
            case .success(let query):
                state = .fetching(head)
                return .startFetch(head, query: query)
            }
        case .notFound:
            return answer(.notFound, to: head)
        case .methodNotAllowed:
            return answer(.methodNotAllowed, to: head)
        }
    }

    // MARK: The app's answer

    mutating func upstreamHead(_ response: HTTPResponseHead) -> Action {
        guard case .fetching(let head) = state else { return .none }
        guard response.status == .ok else {
            return answer(.upstreamStatus(response.status.code), to: head, result: .upstreamError)
        }
        if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > configuration.bodySizeLimit {
            return answer(.upstreamTooLarge, to: head, result: .tooLarge)
        }
        switch UpstreamNegotiation.classify(contentType: response.headers.first(name: "Content-Type"),
                                            contentEncoding: response.headers.first(name: "Content-Encoding"),
                                            protobufAsked: configuration.readsProtobuf
                                                && UpstreamNegotiation.acceptsProtobuf(head.headers.first(name: "Accept"))) {
        case .unreadable(let reason):
            return answer(.upstreamBadFormat(reason: reason), to: head, result: .upstreamBadFormat)
        case .readable(let format, let contentType):
            state = .streaming(head, upstreamBytes: 0)
            responseStarted = false
            let names = UpstreamNegotiation.nameEscaping(forScraper: head.headers.first(name: "Accept"), serving: contentType)
            return .sendResponseHead(response, format: format, contentType: contentType, names: names)
        }
    }

    /// The response's head went out (it waits for the first body byte): from now on a
    /// failure can only cut the connection; before, it is still a clean short answer.
    mutating func responseHeadWritten() {
        responseStarted = true
    }

    /// A scrape that fails while streaming: a short answer while nothing of the
    /// response is out, else the connection is cut (`abort`), so the scraper sees a
    /// broken transfer, never a short body.
    private mutating func fail(_ answer: ShortAnswer, result: GatewayMetrics.ScrapeResult) -> Action {
        switch state {
        case .streaming(let head, _), .finishing(let head, _):
            if !responseStarted { return self.answer(answer, to: head, result: result) }
            state = .closed
            return .abort(result)
        default:
            return .none
        }
    }

    mutating func upstreamBody(bytes: Int) -> Action {
        guard case .streaming(let head, let received) = state, head.method != .HEAD else { return .none }
        guard received + bytes <= configuration.bodySizeLimit else {
            return fail(.upstreamTooLarge, result: .tooLarge)
        }
        state = .streaming(head, upstreamBytes: received + bytes)
        return .forwardBody
    }

    mutating func upstreamEnd() -> Action {
        switch state {
        case .streaming(let head, let received) where head.method == .HEAD:
            return finish(head, upstreamBytes: received)
        case .streaming(let head, let received):
            state = .finishing(head, upstreamBytes: received)
            return .flushFilter
        case .fetching(let head):
            // An end without a head does not happen with NIO's codec; an answer
            // that is no answer is the app's fault.
            return answer(.upstreamUnavailable, to: head, result: .upstreamError)
        default:
            return .none
        }
    }

    /// Before the app is asked: the buffer budget is spent, so this scrape is refused.
    mutating func outboundBudgetSpent() -> Action {
        guard case .fetching(let head) = state else { return .none }
        return answer(.gatewayBusy, to: head, result: .overloaded)
    }

    mutating func upstreamFailed(_ error: UpstreamError) -> Action {
        let result: GatewayMetrics.ScrapeResult = error == .timeout ? .timeout : .upstreamError
        switch state {
        case .fetching(let head):
            return answer(error == .timeout ? .upstreamTimedOut : .upstreamUnavailable, to: head, result: result)
        case .streaming, .finishing:
            return fail(error == .timeout ? .upstreamTimedOut : .upstreamUnavailable, result: result)
        default:
            return .none
        }
    }

    // MARK: The filter

    mutating func filterFlushed() -> Action {
        guard case .finishing(let head, let received) = state else { return .none }
        return finish(head, upstreamBytes: received)
    }

    /// The body ended, nothing of the response is out yet (the head waits for the
    /// first body byte), and the filter read not one line of it: the app's
    /// Content-Type lied about its body. A 502, never an empty 200 (which Prometheus
    /// would take as a target with no series, all of them stale).
    mutating func bodyUnreadable() -> Action {
        guard case .finishing(let head, _) = state else { return .none }
        return answer(.upstreamBadFormat(reason: "a body of which the filter could read no line"), to: head,
                      result: .upstreamBadFormat)
    }

    /// The policy failed the scrape (`invalid_lines: fail_scrape`).
    mutating func filterFailed() -> Action {
        fail(.failedByPolicy, result: .filterRejected)
    }

    // MARK: The connection

    mutating func connectionClosed() -> Action {
        let wasScraping: Bool
        switch state {
        case .fetching, .streaming, .finishing: wasScraping = true
        default: wasScraping = false
        }
        state = .closed
        return .abandon(wasScraping ? .clientAborted : nil)
    }

    mutating func errorCaught() -> Action {
        .close
    }

    // MARK: Helpers

    /// A short answer ends the request (and, with `result`, the scrape).
    private mutating func answer(_ answer: ShortAnswer, to head: HTTPRequestHead,
                                 result: GatewayMetrics.ScrapeResult? = nil) -> Action {
        state = head.isKeepAlive ? .idle : .closed
        return .respond(answer, result: result, closeAfter: !head.isKeepAlive)
    }

    private mutating func finish(_ head: HTTPRequestHead, upstreamBytes: Int) -> Action {
        state = head.isKeepAlive ? .idle : .closed
        return .finishResponse(.success, upstreamBytes: upstreamBytes, closeAfter: !head.isKeepAlive)
    }
}

/// Where a request goes, by its path and method alone.
enum ScrapeRoute: Equatable {
    case scrape
    case ownMetrics
    case notFound
    case methodNotAllowed

    static let ownMetricsPath = "/gateway/metrics"

    init(_ head: HTTPRequestHead, metricsPath: String) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let readOnly = head.method == .GET || head.method == .HEAD
        if path == Self.ownMetricsPath {
            self = readOnly ? .ownMetrics : .methodNotAllowed
        } else if path == metricsPath {
            self = readOnly ? .scrape : .methodNotAllowed
        } else {
            self = .notFound
        }
    }
}
