@testable import GatewayCore
import NIOHTTP1
import Testing

/// The scrape's decisions, in memory: each row feeds the machine a sequence of
/// events and names the action the last one yields and the state it leaves.
@Suite struct ScrapeStateMachineTests {
    enum Event: Sendable {
        /// A request head with one `Host`.
        case head(String, HTTPMethod = .GET, keepAlive: Bool = true, authorization: String? = nil)
        /// `GET /metrics` in HTTP/1.`minor` with exactly these header lines (`Name: value`).
        case bareHead(minor: Int, headers: [String])
        case end
        case rateLimit(Bool)
        case authenticated(BasicAuthenticator.Outcome)
        case budgetSpent
        case upstreamHeadTyped(String)
        case upstreamHead(HTTPResponseStatus, contentLength: Int? = nil)
        case upstreamBody(Int)
        case upstreamEnd
        case upstreamFailed(UpstreamError)
        case filterFlushed
        case filterFailed
        /// The handler wrote the held 200 head (the first body byte is on its way).
        case headWritten
        case closed
        case error
    }

    /// What the last action must be, as text (Action is not Equatable: it carries
    /// request heads), and the state after it.
    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var authentication = false
        var events: [Event]
        var action: String
        var state: String
        var testDescription: String { name }
    }

    static let configuration = ScrapeStateMachine.Configuration(
        maximumRequestLine: 64, metricsPath: "/metrics", authenticationEnabled: false, bodySizeLimit: 100,
        allowedQueryParameters: ["collect[]", "target"])

    static let rows: [Row] = [
        .init(name: "a head alone waits for the end", events: [.head("/metrics")], action: "none", state: "receiving"),
        .init(name: "the end asks the source's rate limit", events: [.head("/metrics"), .end],
              action: "consultRateLimiter(source)", state: "admitting"),
        .init(name: "a long target is refused at the head, before the rate limiter",
              events: [.head("/" + String(repeating: "a", count: 64))],
              action: "respond(requestTargetTooLong, result: nil, closeAfter: false)", state: "idle"),
        .init(name: "HTTP/1.1 without Host: 400 and close", events: [.bareHead(minor: 1, headers: [])],
              action: "respond(missingHost, result: nil, closeAfter: true)", state: "closed"),
        .init(name: "HTTP/1.1 with two Hosts: 400 and close", events: [.bareHead(minor: 1, headers: ["Host: a", "Host: b"])],
              action: "respond(repeatedHost, result: nil, closeAfter: true)", state: "closed"),
        .init(name: "HTTP/1.0 may leave Host out", events: [.bareHead(minor: 0, headers: [])],
              action: "none", state: "receiving"),
        .init(name: "HTTP/1.0 with two Hosts: 400", events: [.bareHead(minor: 0, headers: ["Host: a", "Host: a"])],
              action: "respond(repeatedHost, result: nil, closeAfter: true)", state: "closed"),
        .init(name: "an announced body is refused at the head, before credentials", authentication: true,
              events: [.bareHead(minor: 1, headers: ["Host: x", "Content-Length: 1000000000"])],
              action: "respond(requestBodyNotAllowed, result: nil, closeAfter: true)", state: "closed"),
        .init(name: "a chunked body is refused at the head",
              events: [.bareHead(minor: 1, headers: ["Host: x", "Transfer-Encoding: chunked"])],
              action: "respond(requestBodyNotAllowed, result: nil, closeAfter: true)", state: "closed"),
        .init(name: "Expect: 100-continue with a body is refused, no 100 sent",
              events: [.bareHead(minor: 1, headers: ["Host: x", "Content-Length: 5", "Expect: 100-continue"])],
              action: "respond(requestBodyNotAllowed, result: nil, closeAfter: true)", state: "closed"),
        .init(name: "Content-Length: 0 is no body", events: [.bareHead(minor: 1, headers: ["Host: x", "Content-Length: 0"])],
              action: "none", state: "receiving"),
        .init(name: "rate limited", events: [.head("/metrics"), .end, .rateLimit(false)],
              action: "respond(tooManyRequests, result: nil, closeAfter: false)", state: "idle"),
        .init(name: "no auth configured: the total rate limit is asked",
              events: [.head("/metrics"), .end, .rateLimit(true)], action: "consultRateLimiter(identity )",
              state: "limiting"),
        .init(name: "no auth configured: the scrape starts, the connection is proven",
              events: [.head("/metrics"), .end, .rateLimit(true), .rateLimit(true)], action: "admitted(startFetch)",
              state: "fetching"),
        .init(name: "auth configured: credentials are checked", authentication: true,
              events: [.head("/metrics", authorization: "Basic eA=="), .end, .rateLimit(true)],
              action: "authenticate(Basic eA==)", state: "admitting"),
        .init(name: "wrong credentials", authentication: true,
              events: [.head("/metrics"), .end, .rateLimit(true), .authenticated(.wrongPassword)],
              action: "respond(unauthorized(wrong_password), result: nil, closeAfter: false)", state: "idle"),
        .init(name: "authentication overloaded", authentication: true,
              events: [.head("/metrics"), .end, .rateLimit(true), .authenticated(.overloaded)],
              action: "respond(authenticationOverloaded, result: nil, closeAfter: false)", state: "idle"),
        .init(name: "allowed", authentication: true,
              events: [.head("/metrics"), .end, .rateLimit(true), .authenticated(.allowed(user: "p"))],
              action: "consultRateLimiter(identity p)", state: "limiting"),
        .init(name: "allowed, and within the identity's rate", authentication: true,
              events: [.head("/metrics"), .end, .rateLimit(true), .authenticated(.allowed(user: "p")), .rateLimit(true)],
              action: "admitted(startFetch)", state: "fetching"),
        .init(name: "allowed, but over the identity's or the total rate", authentication: true,
              events: [.head("/metrics"), .end, .rateLimit(true), .authenticated(.allowed(user: "p")), .rateLimit(false)],
              action: "respond(tooManyRequests, result: nil, closeAfter: false)", state: "idle"),
        .init(name: "a connection is proven once", authentication: true,
              events: [.head("/gateway/metrics"), .end, .rateLimit(true), .authenticated(.allowed(user: "p")), .rateLimit(true),
                       .head("/metrics"), .end, .rateLimit(true), .authenticated(.allowed(user: "p")), .rateLimit(true)],
              action: "startFetch", state: "fetching"),
        .init(name: "failed credentials do not prove a connection", authentication: true,
              events: [.head("/metrics"), .end, .rateLimit(true), .authenticated(.wrongPassword),
                       .head("/metrics"), .end, .rateLimit(true), .authenticated(.allowed(user: "p")), .rateLimit(true)],
              action: "admitted(startFetch)", state: "fetching"),
        .init(name: "the client leaves during authentication", authentication: true,
              events: [.head("/metrics"), .end, .rateLimit(true), .closed, .authenticated(.allowed(user: "p")), .rateLimit(true)],
              action: "none", state: "closed"),
        .init(name: "another path", events: [.head("/other"), .end, .rateLimit(true), .rateLimit(true)],
              action: "admitted(respond(notFound, result: nil, closeAfter: false))", state: "idle"),
        .init(name: "POST to the metrics path", events: [.head("/metrics", .POST), .end, .rateLimit(true), .rateLimit(true)],
              action: "admitted(respond(methodNotAllowed, result: nil, closeAfter: false))", state: "idle"),
        .init(name: "a query parameter not allowed: 400, not dropped", events: [.head("/metrics?x=1"), .end, .rateLimit(true), .rateLimit(true)],
              action: "admitted(respond(queryParameterNotAllowed, result: nil, closeAfter: false))", state: "idle"),
        .init(name: "allowed query parameters are passed on",
              events: [.head("/metrics?collect%5B%5D=cpu&target=a"), .end, .rateLimit(true), .rateLimit(true)],
              action: "admitted(startFetch(collect%5B%5D=cpu&target=a))", state: "fetching"),
        .init(name: "one parameter not allowed among allowed ones: 400",
              events: [.head("/metrics?collect[]=cpu&secret=1"), .end, .rateLimit(true), .rateLimit(true)],
              action: "admitted(respond(queryParameterNotAllowed, result: nil, closeAfter: false))", state: "idle"),
        .init(name: "an empty query is no query", events: [.head("/metrics?"), .end, .rateLimit(true), .rateLimit(true)],
              action: "admitted(startFetch)", state: "fetching"),
        .init(name: "own metrics", events: [.head("/gateway/metrics"), .end, .rateLimit(true), .rateLimit(true)],
              action: "admitted(serveOwnMetrics(closeAfter: false))", state: "idle"),
        .init(name: "own metrics without keep-alive", events: [.head("/gateway/metrics", keepAlive: false), .end, .rateLimit(true), .rateLimit(true)],
              action: "admitted(serveOwnMetrics(closeAfter: true))", state: "closed"),
        .init(name: "the buffer budget is spent: 503 before the app is asked", events: fetching + [.budgetSpent],
              action: "respond(gatewayBusy, result: overloaded, closeAfter: false)", state: "idle"),
        .init(name: "a spent budget mid-stream changes nothing", events: fetching + [.upstreamHead(.ok), .budgetSpent],
              action: "none", state: "streaming"),
        .init(name: "the app answers protobuf, not asked for: 502 before a byte is sent",
              events: fetching + [.upstreamHeadTyped("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily")],
              action: "respond(upstreamBadFormat(reason: \"media type application/vnd.google.protobuf (io.prometheus.client.MetricFamily)\"), result: upstreamBadFormat, closeAfter: false)",
              state: "idle"),
        .init(name: "the app answers OpenMetrics: streamed", events: fetching + [.upstreamHeadTyped("application/openmetrics-text; version=1.0.0")],
              action: "sendResponseHead", state: "streaming"),
        .init(name: "the app answers 200", events: fetching + [.upstreamHead(.ok)],
              action: "sendResponseHead", state: "streaming"),
        .init(name: "the app answers 500", events: fetching + [.upstreamHead(.internalServerError)],
              action: "respond(upstreamStatus(500), result: upstreamError, closeAfter: false)", state: "idle"),
        .init(name: "the app declares too large a body", events: fetching + [.upstreamHead(.ok, contentLength: 101)],
              action: "respond(upstreamTooLarge, result: tooLarge, closeAfter: false)", state: "idle"),
        .init(name: "the app times out", events: fetching + [.upstreamFailed(.timeout)],
              action: "respond(upstreamTimedOut, result: timeout, closeAfter: false)", state: "idle"),
        .init(name: "the app refuses the connection", events: fetching + [.upstreamFailed(.connectFailed("x"))],
              action: "respond(upstreamUnavailable, result: upstreamError, closeAfter: false)", state: "idle"),
        .init(name: "a body part", events: streaming + [.upstreamBody(60)], action: "forwardBody", state: "streaming"),
        .init(name: "the body goes over the limit", events: started + [.upstreamBody(60), .upstreamBody(41)],
              action: "abort(tooLarge)", state: "closed"),
        .init(name: "the body goes over the limit before a byte is out: a clean 502",
              events: streaming + [.upstreamBody(60), .upstreamBody(41)],
              action: "respond(upstreamTooLarge, result: tooLarge, closeAfter: false)", state: "idle"),
        .init(name: "the body ends: the filter flushes", events: streaming + [.upstreamBody(10), .upstreamEnd],
              action: "flushFilter", state: "finishing"),
        .init(name: "flushed: success", events: streaming + [.upstreamEnd, .filterFlushed],
              action: "finishResponse(success, closeAfter: false)", state: "idle"),
        .init(name: "flushed without keep-alive: success, then close",
              events: [.head("/metrics", keepAlive: false), .end, .rateLimit(true), .rateLimit(true), .upstreamHead(.ok), .upstreamEnd,
                       .filterFlushed],
              action: "finishResponse(success, closeAfter: true)", state: "closed"),
        .init(name: "the filter fails the scrape", events: started + [.upstreamBody(10), .filterFailed],
              action: "abort(filterRejected)", state: "closed"),
        .init(name: "the filter fails it at the end", events: started + [.upstreamEnd, .filterFailed],
              action: "abort(filterRejected)", state: "closed"),
        .init(name: "the filter fails it before a byte is out: a clean 502", events: streaming + [.upstreamBody(10), .filterFailed],
              action: "respond(failedByPolicy, result: filterRejected, closeAfter: false)", state: "idle"),
        .init(name: "the app fails mid-body", events: started + [.upstreamFailed(.connectionClosed)],
              action: "abort(upstreamError)", state: "closed"),
        .init(name: "the app times out mid-body", events: started + [.upstreamFailed(.timeout)],
              action: "abort(timeout)", state: "closed"),
        .init(name: "the app times out before a byte is out: a clean 504", events: streaming + [.upstreamFailed(.timeout)],
              action: "respond(upstreamTimedOut, result: timeout, closeAfter: false)", state: "idle"),
        .init(name: "the client leaves while the app is asked", events: fetching + [.closed],
              action: "abandon(Optional(clientAborted))", state: "closed"),
        .init(name: "the client leaves mid-body", events: streaming + [.closed],
              action: "abandon(Optional(clientAborted))", state: "closed"),
        .init(name: "the client leaves between requests", events: [.closed], action: "abandon(nil)", state: "closed"),
        .init(name: "after an abort, the close records nothing", events: streaming + [.upstreamBody(101), .closed],
              action: "abandon(nil)", state: "closed"),
        .init(name: "after a short answer with close, nothing", events: [.head("/x", keepAlive: false), .end,
                                                                         .rateLimit(true), .rateLimit(true), .closed],
              action: "abandon(nil)", state: "closed"),
        .init(name: "HEAD: no body is counted, the end finishes",
              events: [.head("/metrics", .HEAD), .end, .rateLimit(true), .rateLimit(true), .upstreamHead(.ok), .upstreamBody(500), .upstreamEnd],
              action: "finishResponse(success, closeAfter: false)", state: "idle"),
        .init(name: "a second request after a scrape", events: streaming + [.upstreamEnd, .filterFlushed, .head("/metrics")],
              action: "none", state: "receiving"),
        .init(name: "late app events after a clean answer change nothing",
              events: streaming + [.filterFailed, .upstreamBody(5), .upstreamEnd, .upstreamFailed(.timeout)],
              action: "none", state: "idle"),
        .init(name: "late app events after an abort change nothing",
              events: started + [.filterFailed, .upstreamBody(5), .upstreamEnd, .upstreamFailed(.timeout)],
              action: "none", state: "closed"),
        .init(name: "an error closes; the state waits for the close", events: streaming + [.error],
              action: "close", state: "streaming"),
    ]

    static let fetching: [Event] = [.head("/metrics"), .end, .rateLimit(true), .rateLimit(true)]
    static let streaming: [Event] = fetching + [.upstreamHead(.ok)]
    /// Streaming, with the 200 head out.
    static let started: [Event] = streaming + [.headWritten]

    @Test(arguments: rows)
    func transition(_ row: Row) {
        var configuration = Self.configuration
        configuration.authenticationEnabled = row.authentication
        var machine = ScrapeStateMachine(configuration: configuration)
        var action = ScrapeStateMachine.Action.none
        for event in row.events {
            action = Self.feed(event, to: &machine)
        }
        #expect(Self.describe(action) == row.action)
        #expect(Self.describe(machine.state) == row.state)
    }

    /// Whatever the events, a scrape's result is given once: count the results the
    /// actions carry over every prefix of every row.
    @Test(arguments: rows)
    func aScrapeEndsOnce(_ row: Row) {
        var configuration = Self.configuration
        configuration.authenticationEnabled = row.authentication
        var machine = ScrapeStateMachine(configuration: configuration)
        var results = 0
        var scrapes = 0
        for event in row.events + [.closed] {
            var action = Self.feed(event, to: &machine)
            if case .admitted(let next) = action { action = next }
            if case .startFetch = action { scrapes += 1 }
            switch action {
            case .respond(_, .some, _), .finishResponse, .abort, .abandon(.some):
                results += 1
            default:
                break
            }
        }
        #expect(results == scrapes)
    }

    static func feed(_ event: Event, to machine: inout ScrapeStateMachine) -> ScrapeStateMachine.Action {
        switch event {
        case .head(let uri, let method, let keepAlive, let authorization):
            var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
            head.headers.add(name: "Host", value: "gateway:9443")
            if !keepAlive { head.headers.add(name: "Connection", value: "close") }
            if let authorization { head.headers.add(name: "Authorization", value: authorization) }
            return machine.requestHead(head)
        case .bareHead(let minor, let lines):
            var head = HTTPRequestHead(version: HTTPVersion(major: 1, minor: minor), method: .GET, uri: "/metrics")
            for line in lines {
                let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingPrefix(" ") }
                head.headers.add(name: String(parts[0]), value: String(parts[1]))
            }
            return machine.requestHead(head)
        case .end: return machine.requestEnd()
        case .rateLimit(let allowed): return machine.rateLimiterAnswered(allowed: allowed)
        case .budgetSpent: return machine.outboundBudgetSpent()
        case .upstreamHeadTyped(let contentType):
            return machine.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Type": contentType]))
        case .authenticated(let outcome): return machine.authenticated(outcome)
        case .upstreamHead(let status, let length):
            var head = HTTPResponseHead(version: .http1_1, status: status)
            if let length { head.headers.add(name: "Content-Length", value: "\(length)") }
            return machine.upstreamHead(head)
        case .upstreamBody(let bytes): return machine.upstreamBody(bytes: bytes)
        case .upstreamEnd: return machine.upstreamEnd()
        case .upstreamFailed(let error): return machine.upstreamFailed(error)
        case .filterFlushed: return machine.filterFlushed()
        case .filterFailed: return machine.filterFailed()
        case .headWritten:
            machine.responseHeadWritten()
            return .none
        case .closed: return machine.connectionClosed()
        case .error: return machine.errorCaught()
        }
    }

    static func describe(_ action: ScrapeStateMachine.Action) -> String {
        switch action {
        case .none: return "none"
        case .admitted(let next): return "admitted(\(describe(next)))"
        case .consultRateLimiter(let identity): return "consultRateLimiter(\(identity.map { "identity \($0)" } ?? "source"))"
        case .authenticate(let authorization): return "authenticate(\(authorization ?? "nil"))"
        case .respond(let answer, let result, let closeAfter):
            let answerText: String
            if case .unauthorized(let reason) = answer { answerText = "unauthorized(\(reason))" } else { answerText = "\(answer)" }
            return "respond(\(answerText), result: \(result.map { "\($0)" } ?? "nil"), closeAfter: \(closeAfter))"
        case .serveOwnMetrics(let closeAfter): return "serveOwnMetrics(closeAfter: \(closeAfter))"
        case .startFetch(_, let query): return query.map { "startFetch(\($0))" } ?? "startFetch"
        case .sendResponseHead: return "sendResponseHead"
        case .forwardBody: return "forwardBody"
        case .flushFilter: return "flushFilter"
        case .finishResponse(let result, _, let closeAfter): return "finishResponse(\(result), closeAfter: \(closeAfter))"
        case .abort(let result): return "abort(\(result))"
        case .abandon(let result): return "abandon(\(result.map { "Optional(\($0))" } ?? "nil"))"
        case .close: return "close"
        }
    }

    static func describe(_ state: ScrapeStateMachine.State) -> String {
        switch state {
        case .idle: return "idle"
        case .receiving: return "receiving"
        case .admitting: return "admitting"
        case .limiting: return "limiting"
        case .fetching: return "fetching"
        case .streaming: return "streaming"
        case .finishing: return "finishing"
        case .closed: return "closed"
        }
    }
}
