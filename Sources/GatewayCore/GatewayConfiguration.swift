/// scrapeguard.yml: where the app's metrics are and how to fetch them. A ConfigMap:
/// policy, never secrets. Unknown keys are refused.
public struct GatewayConfiguration: Sendable, Hashable {
    public var upstream: UpstreamConfiguration
    /// The path that serves the app's filtered metrics.
    public var metricsPath: String

    public init(upstream: UpstreamConfiguration = UpstreamConfiguration(), metricsPath: String = "/metrics") {
        self.upstream = upstream
        self.metricsPath = metricsPath
    }

    public static func load(file: String) throws -> GatewayConfiguration {
        var root = try YAMLConfigReader.loadFile(file)
        var configuration = GatewayConfiguration()
        if var upstream = try root.mapping("upstream") {
            if let text = try upstream.string("url") {
                do {
                    configuration.upstream.url = try UpstreamURL(parsing: text)
                } catch {
                    throw upstream.error(.invalidValue, "url", error.reason)
                }
            }
            if let timeout = try upstream.duration("scrape_timeout") {
                guard timeout > .zero else { throw upstream.error(.invalidValue, "scrape_timeout", "must be greater than 0") }
                configuration.upstream.scrapeTimeout = timeout
            }
            if let timeout = try upstream.duration("connect_timeout") {
                guard timeout > .zero else { throw upstream.error(.invalidValue, "connect_timeout", "must be greater than 0") }
                configuration.upstream.connectTimeout = timeout
            }
            if let limit = try upstream.byteSize("body_size_limit") {
                guard limit > 0 else { throw upstream.error(.invalidValue, "body_size_limit", "must be greater than 0") }
                configuration.upstream.bodySizeLimit = limit
            }
            try upstream.finish()
        }
        if var server = try root.mapping("server") {
            if let path = try server.string("metrics_path") {
                guard path.hasPrefix("/"), !path.contains("?"), !path.contains("#"), !path.contains(" ") else {
                    throw server.error(.invalidValue, "metrics_path", "must be an absolute path such as /metrics")
                }
                guard path != "/gateway/metrics" else {
                    throw server.error(.invalidValue, "metrics_path", "/gateway/metrics is the gateway's own")
                }
                configuration.metricsPath = path
            }
            try server.finish()
        }
        try root.finish()
        return configuration
    }
}

/// How the app's metrics are fetched.
public struct UpstreamConfiguration: Sendable, Hashable {
    public var url: UpstreamURL
    /// The fetch deadline when the scraper sends no `X-Prometheus-Scrape-Timeout-Seconds`.
    public var scrapeTimeout: Duration
    public var connectTimeout: Duration
    /// A larger body aborts the response: it is never cut short silently.
    public var bodySizeLimit: Int

    public init(
        url: UpstreamURL = try! UpstreamURL(parsing: "http://127.0.0.1:8000/metrics"),
        scrapeTimeout: Duration = .seconds(10),
        connectTimeout: Duration = .seconds(2),
        bodySizeLimit: Int = 64 << 20
    ) {
        self.url = url
        self.scrapeTimeout = scrapeTimeout
        self.connectTimeout = connectTimeout
        self.bodySizeLimit = bodySizeLimit
    }
}

/// An `http://host:port/path` URL of the app's metrics. Only plain HTTP: the app is
/// on loopback in the same pod.
public struct UpstreamURL: Sendable, Hashable, CustomStringConvertible {
    public struct Invalid: Error, Sendable {
        public var reason: String
    }

    public var host: String
    public var port: Int
    /// Path and query, starting with `/`.
    public var pathAndQuery: String

    public init(parsing text: String) throws(Invalid) {
        guard text.hasPrefix("http://") else {
            throw Invalid(reason: "invalid upstream URL \"\(text)\": must start with http:// (the app listens on loopback)")
        }
        let rest = text.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        var path = String(rest.dropFirst(authority.count))
        if path.isEmpty { path = "/metrics" }
        if path.hasPrefix("?") { path = "/" + path }
        guard !authority.isEmpty, !authority.contains("@") else {
            throw Invalid(reason: "invalid upstream URL \"\(text)\": needs a host and no user info")
        }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw Invalid(reason: "invalid upstream URL \"\(text)\": unclosed [")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty {
                throw Invalid(reason: "invalid upstream URL \"\(text)\"")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        var port = 80
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw Invalid(reason: "invalid upstream URL \"\(text)\": bad port \"\(portText)\"")
            }
            port = value
        }
        guard !host.isEmpty else {
            throw Invalid(reason: "invalid upstream URL \"\(text)\": empty host")
        }
        self.host = String(host)
        self.port = port
        self.pathAndQuery = path
    }

    /// The `Host` header value.
    public var hostHeader: String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return port == 80 ? bracketed : "\(bracketed):\(port)"
    }

    public var description: String { "http://\(hostHeader)\(pathAndQuery)" }
}
