import MetricsFilter

/// scrapeguard.yml: where the app's metrics are, how to fetch them, and the filter
/// policy they pass through. A ConfigMap:
/// policy, never secrets. Unknown keys are refused.
package struct GatewayConfiguration: Sendable {
    package var upstream: UpstreamConfiguration
    /// The path that serves the app's filtered metrics.
    package var metricsPath: String
    package var limits: ServerLimits
    /// Relabeling and the rest of the filter policy.
    package var filter: FilterPolicy
    /// Files the configuration named and read (the PII hash key), for the reloader.
    package var referencedFiles: [String] = []

    package init(upstream: UpstreamConfiguration = UpstreamConfiguration(), metricsPath: String = "/metrics",
                limits: ServerLimits = ServerLimits(), filter: FilterPolicy = FilterPolicy()) {
        self.upstream = upstream
        self.metricsPath = metricsPath
        self.limits = limits
        self.filter = filter
    }

    /// Prometheus's duration syntax (`15s`, `1m30s`, `500ms`), for flags.
    package static func parseDuration(_ text: String) -> Duration? {
        PrometheusDuration.parse(text)
    }

    package static func load(file: String) throws -> GatewayConfiguration {
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
            if let names = try upstream.stringList("allowed_query_params") {
                for (index, name) in names.enumerated()
                where name.isEmpty || name.contains(where: { "&=?#% ".contains($0) }) {
                    throw upstream.error(.invalidValue, "allowed_query_params[\(index)]",
                                         "\"\(name)\" is not a plain parameter name")
                }
                configuration.upstream.allowedQueryParameters = names
            }
            if let path = try upstream.string("path") {
                guard configuration.upstream.url.unixSocketPath != nil else {
                    throw upstream.error(.conflictingKeys, "path", "only for a unix:// url (an http:// url carries its own path)")
                }
                guard path.hasPrefix("/") else { throw upstream.error(.invalidValue, "path", "must start with /") }
                configuration.upstream.url.pathAndQuery = path
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
            try configuration.limits.read(from: &server)
            try server.finish()
        }
        configuration.filter = try FilterConfiguration.read(from: &root, files: &configuration.referencedFiles)
        try root.finish()
        return configuration
    }
}

/// How the app's metrics are fetched.
package struct UpstreamConfiguration: Sendable, Hashable {
    package var url: UpstreamURL
    /// The fetch deadline when the scraper sends no `X-Prometheus-Scrape-Timeout-Seconds`.
    package var scrapeTimeout: Duration
    package var connectTimeout: Duration
    /// A larger body aborts the response: it is never cut short silently.
    package var bodySizeLimit: Int
    /// Query parameters of the scrape passed on to the app (`upstream.allowed_query_params`);
    /// any other is refused with 400 (`ScrapeQuery`).
    package var allowedQueryParameters: [String]

    package init(
        url: UpstreamURL = UpstreamURL(host: "127.0.0.1", port: 8000, pathAndQuery: "/metrics"),
        scrapeTimeout: Duration = .seconds(10),
        connectTimeout: Duration = .seconds(2),
        bodySizeLimit: Int = 64 << 20,
        allowedQueryParameters: [String] = []
    ) {
        self.url = url
        self.scrapeTimeout = scrapeTimeout
        self.connectTimeout = connectTimeout
        self.bodySizeLimit = bodySizeLimit
        self.allowedQueryParameters = allowedQueryParameters
    }
}

/// Where the app's metrics are: `http://host:port/path` on loopback, or
/// `unix:///path/to/app.sock` (HTTP over a Unix domain socket, path `/metrics` unless
/// `upstream.path` says otherwise), so the app need not open any TCP port. Only plain
/// HTTP: the app is in the same pod.
package struct UpstreamURL: Sendable, Hashable, CustomStringConvertible {
    package struct Invalid: Error, Sendable {
        package var reason: String
    }

    package var host: String
    package var port: Int
    /// Path and query, starting with `/`.
    package var pathAndQuery: String
    /// Set for a `unix://` URL.
    package var unixSocketPath: String?

    /// An `http://` URL from its parts.
    package init(host: String, port: Int, pathAndQuery: String) {
        self.host = host
        self.port = port
        self.pathAndQuery = pathAndQuery
        self.unixSocketPath = nil
    }

    package init(parsing text: String) throws(Invalid) {
        if text.hasPrefix("unix://") {
            let path = String(text.dropFirst("unix://".count))
            guard path.hasPrefix("/"), path.count > 1, !path.contains("?"), !path.contains("#") else {
                throw Invalid(reason: "invalid upstream URL \"\(text)\": a unix URL is unix:///absolute/path/to/app.sock")
            }
            self.host = "localhost"
            self.port = 0
            self.pathAndQuery = "/metrics"
            self.unixSocketPath = path
            return
        }
        guard text.hasPrefix("http://") else {
            throw Invalid(reason: "invalid upstream URL \"\(text)\": must start with http:// or unix:// (the app is in the pod)")
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
        self.unixSocketPath = nil
    }

    /// The `Host` header value.
    package var hostHeader: String {
        if unixSocketPath != nil { return "localhost" }
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return port == 80 ? bracketed : "\(bracketed):\(port)"
    }

    package var description: String {
        if let unixSocketPath {
            return pathAndQuery == "/metrics" ? "unix://\(unixSocketPath)" : "unix://\(unixSocketPath) path \(pathAndQuery)"
        }
        return "http://\(hostHeader)\(pathAndQuery)"
    }
}
