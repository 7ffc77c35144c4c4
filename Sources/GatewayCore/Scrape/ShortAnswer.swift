import NIOHTTP1

/// Every answer the gateway gives that is not a scrape body: a status and a short
/// fixed text. None echoes anything from the request or names an internal cause.
enum ShortAnswer: Equatable {
    /// RFC 9112: an HTTP/1.1 request has exactly one `Host`.
    case missingHost
    case repeatedHost
    /// A scrape has no body: one announced is refused before a byte of it is waited for.
    case requestBodyNotAllowed
    case requestTargetTooLong
    /// The scrape's query names a parameter `upstream.allowed_query_params` does not list.
    case queryParameterNotAllowed
    case tooManyRequests
    case authenticationOverloaded
    /// Why, for the auth-failure counter and the log; never sent.
    case unauthorized(reason: String)
    case notFound
    case methodNotAllowed
    case upstreamStatus(UInt)
    case upstreamTooLarge
    case upstreamTimedOut
    case upstreamUnavailable
    /// The app answered in a format the filter cannot read (the reason is logged, never sent).
    case upstreamBadFormat(reason: String)
    /// `max_buffered_bytes` is spent by scrapers that read slowly: try again soon.
    case gatewayBusy
    /// A line the policy fails the scrape on (`invalid_lines: fail_scrape`), before
    /// any byte of the response was out.
    case failedByPolicy

    var status: HTTPResponseStatus {
        switch self {
        case .missingHost, .repeatedHost: return .badRequest
        case .requestBodyNotAllowed: return .payloadTooLarge
        case .requestTargetTooLong: return .uriTooLong
        case .queryParameterNotAllowed: return .badRequest
        case .tooManyRequests: return .tooManyRequests
        case .authenticationOverloaded: return .serviceUnavailable
        case .unauthorized: return .unauthorized
        case .notFound: return .notFound
        case .methodNotAllowed: return .methodNotAllowed
        case .upstreamStatus, .upstreamTooLarge, .upstreamUnavailable, .upstreamBadFormat, .failedByPolicy: return .badGateway
        case .upstreamTimedOut: return .gatewayTimeout
        case .gatewayBusy: return .serviceUnavailable
        }
    }

    var text: String {
        switch self {
        case .missingHost: return "bad request: no Host header\n"
        case .repeatedHost: return "bad request: more than one Host header\n"
        case .requestBodyNotAllowed: return "a scrape request has no body\n"
        case .requestTargetTooLong: return "request target too long\n"
        case .queryParameterNotAllowed: return "bad request: a query parameter that is not allowed\n"
        case .tooManyRequests: return "too many requests\n"
        case .authenticationOverloaded: return "authentication overloaded\n"
        case .unauthorized: return "unauthorized\n"
        case .notFound: return "not found\n"
        case .methodNotAllowed: return "method not allowed\n"
        case .upstreamStatus(let code): return "upstream answered \(code)\n"
        case .upstreamTooLarge: return "upstream body exceeds the body size limit\n"
        case .upstreamTimedOut: return "upstream timed out\n"
        case .upstreamUnavailable: return "upstream unavailable\n"
        case .upstreamBadFormat: return "upstream answered in a format the gateway cannot filter\n"
        case .gatewayBusy: return "gateway busy\n"
        case .failedByPolicy: return "the scrape failed the gateway's filter policy\n"
        }
    }

    /// The `reason` label of `scrapeguard_requests_refused_total` for the answers that
    /// refuse a request before it is served (auth failures have a counter of their own).
    var refusalReason: String? {
        switch self {
        case .missingHost: return "missing_host"
        case .repeatedHost: return "repeated_host"
        case .requestBodyNotAllowed: return "request_body"
        case .requestTargetTooLong: return "request_target_too_long"
        case .queryParameterNotAllowed: return "query_parameter"
        case .tooManyRequests: return "rate_limited"
        case .gatewayBusy: return "buffer_budget"
        default: return nil
        }
    }

    /// Headers the status calls for.
    var headers: [(String, String)] {
        switch self {
        case .tooManyRequests, .authenticationOverloaded, .gatewayBusy: return [("Retry-After", "1")]
        case .unauthorized: return [("WWW-Authenticate", "Basic realm=\"scrapeguard\", charset=\"UTF-8\"")]
        case .methodNotAllowed: return [("Allow", "GET, HEAD")]
        default: return []
        }
    }
}
