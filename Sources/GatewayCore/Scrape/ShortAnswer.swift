import NIOHTTP1

/// Every answer the gateway gives that is not a scrape body: a status and a short
/// fixed text. None echoes anything from the request or names an internal cause.
enum ShortAnswer: Equatable {
    case requestTargetTooLong
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

    var status: HTTPResponseStatus {
        switch self {
        case .requestTargetTooLong: return .uriTooLong
        case .tooManyRequests: return .tooManyRequests
        case .authenticationOverloaded: return .serviceUnavailable
        case .unauthorized: return .unauthorized
        case .notFound: return .notFound
        case .methodNotAllowed: return .methodNotAllowed
        case .upstreamStatus, .upstreamTooLarge, .upstreamUnavailable: return .badGateway
        case .upstreamTimedOut: return .gatewayTimeout
        }
    }

    var text: String {
        switch self {
        case .requestTargetTooLong: return "request target too long\n"
        case .tooManyRequests: return "too many requests\n"
        case .authenticationOverloaded: return "authentication overloaded\n"
        case .unauthorized: return "unauthorized\n"
        case .notFound: return "not found\n"
        case .methodNotAllowed: return "method not allowed\n"
        case .upstreamStatus(let code): return "upstream answered \(code)\n"
        case .upstreamTooLarge: return "upstream body exceeds the body size limit\n"
        case .upstreamTimedOut: return "upstream timed out\n"
        case .upstreamUnavailable: return "upstream unavailable\n"
        }
    }

    /// Headers the status calls for.
    var headers: [(String, String)] {
        switch self {
        case .tooManyRequests, .authenticationOverloaded: return [("Retry-After", "1")]
        case .unauthorized: return [("WWW-Authenticate", "Basic realm=\"scrapeguard\", charset=\"UTF-8\"")]
        case .methodNotAllowed: return [("Allow", "GET, HEAD")]
        default: return []
        }
    }
}
