import GatewayTLS

/// exporter-toolkit's web-config.yml, read strictly. The same file that
/// `promtool check web-config` accepts works here, with these deliberate refusals:
/// no `tls_server_config` (the gateway never serves plain HTTP), TLS 1.0/1.1
/// (RFC 8996), and a verifying `client_auth_type` without a client CA (Go would fall
/// back to the system roots, which is never what a sidecar wants).
package struct WebConfiguration: Sendable, Hashable {
    package var tls: TLSConfiguration
    /// User name to bcrypt hash. Empty: no basic auth.
    package var basicAuthUsers: [String: String]
    /// Extra response headers, from `http_server_config.headers`, in file order.
    package var headers: [HTTPHeaderSetting]
    package var rateLimit: RateLimitSetting?

    package struct HTTPHeaderSetting: Sendable, Hashable {
        package var name: String
        package var value: String
    }

    package struct RateLimitSetting: Sendable, Hashable {
        /// One request is allowed per `interval`, with bursts up to `burst`.
        package var interval: Duration
        package var burst: Int
    }

    /// The certificate, key and CA files it names, for the reloader to watch.
    package var certificateFiles: [String] {
        ([tls.certificateChain, tls.privateKey] + (tls.clientCA.map { [$0] } ?? [])).compactMap { source in
            if case .file(let path) = source { return path }
            return nil
        }
    }

    /// Reads and validates a web-config file. Relative paths resolve against the
    /// file's folder.
    package static func load(file: String) throws -> WebConfiguration {
        try loadWithContext(file: file).configuration
    }

    /// The same, with the TLS context its certificates made: the check that they load
    /// is the context a reload then uses.
    static func loadWithContext(file: String) throws -> (configuration: WebConfiguration, tlsContext: TLSContext) {
        var root = try YAMLConfigReader.loadFile(file)
        try root.refuseUnknownKeys(allowed: ["tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"])
        let folder = PathResolution.folder(of: file)

        guard var tlsSection = try root.mapping("tls_server_config"), !tlsSection.isEmpty else {
            throw ConfigError(.missingKey, file: file, key: "tls_server_config",
                              reason: "required: scrapeguard only serves over TLS")
        }
        var texts: [String: String] = [:]
        let tls = try readTLS(&tlsSection, folder: folder, texts: &texts)
        try tlsSection.finish()
        let tlsContext = try checkCredentials(tls, texts: texts, section: tlsSection)

        var headers: [HTTPHeaderSetting] = []
        if var http = try root.mapping("http_server_config") {
            try http.refuseUnknownKeys(allowed: ["http2", "headers"])
            _ = try http.bool("http2")  // HTTP/2 is not served; accepted for compatibility
            if var headerSection = try http.mapping("headers") {
                headers = try readHeaders(&headerSection)
            }
            try http.finish()
        }

        var users: [String: String] = [:]
        if var userSection = try root.mapping("basic_auth_users") {
            userSection.consumeAll()
            for (user, value) in userSection.rawEntries {
                guard let hash = value.scalar?.string else {
                    throw userSection.error(.wrongType, user, "must be a bcrypt hash string")
                }
                if let cost = BcryptHash.declaredCost(of: hash), !(4...31).contains(cost) {
                    throw userSection.error(.invalidValue, user, "bcrypt cost \(cost) is out of range (4 to 31)")
                }
                guard BcryptHash.isWellFormed(hash) else {
                    throw userSection.error(.invalidValue, user, "not a bcrypt hash (make one with: scrapeguard hash-password)")
                }
                users[user] = hash
            }
        }

        var rateLimit: RateLimitSetting?
        if var rate = try root.mapping("rate_limit") {
            try rate.refuseUnknownKeys(allowed: ["interval", "burst"])
            if let text = try rate.string("interval"), text.hasPrefix("-") {
                throw rate.error(.invalidValue, "interval", "must not be negative")
            }
            let interval = try rate.duration("interval") ?? .zero
            let burst = try rate.int("burst") ?? 0
            try rate.finish()
            // interval 0 with burst 0 is exporter-toolkit's "no limiter".
            if interval > .zero || burst != 0 {
                guard burst >= 1 else {
                    throw rate.error(.invalidValue, "burst", "must be at least 1 (0 would refuse every request)")
                }
                rateLimit = RateLimitSetting(interval: interval, burst: burst)
            }
        }
        try root.finish()
        return (WebConfiguration(tls: tls, basicAuthUsers: users, headers: headers, rateLimit: rateLimit), tlsContext)
    }

    /// The `tls_server_config` section; the files it names are read once, their text
    /// kept in `texts` for the TLS context.
    private static func readTLS(_ section: inout YAMLConfigReader, folder: String,
                                texts: inout [String: String]) throws -> TLSConfiguration {
        try section.refuseUnknownKeys(allowed: [
            "cert_file", "key_file", "cert", "key", "client_ca_file", "client_ca", "client_auth_type",
            "client_allowed_sans", "client_allowed_san_patterns", "min_version", "max_version", "cipher_suites", "prefer_server_cipher_suites",
            "curve_preferences",
        ])
        let certificate = try pemSource(&section, fileKey: "cert_file", inlineKey: "cert", folder: folder, required: true,
                                        texts: &texts)!
        let key = try pemSource(&section, fileKey: "key_file", inlineKey: "key", folder: folder, required: true,
                                texts: &texts)!
        let clientCA = try pemSource(&section, fileKey: "client_ca_file", inlineKey: "client_ca", folder: folder,
                                     required: false, texts: &texts)

        let authText = try section.string("client_auth_type") ?? "NoClientCert"
        let clientAuth: ClientAuthPolicy
        switch authText {
        case "", "NoClientCert": clientAuth = .noClientCert
        case "RequireClientCert": clientAuth = .requireAnyClientCert  // toolkit's old alias
        default:
            guard let policy = ClientAuthPolicy(rawValue: authText) else {
                throw section.error(.invalidValue, "client_auth_type",
                    "invalid client_auth_type \"\(authText)\": expected one of \(ClientAuthPolicy.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            clientAuth = policy
        }
        if let clientCA, clientAuth == .noClientCert {
            let key = if case .inline = clientCA { "client_ca" } else { "client_ca_file" }
            throw section.error(.conflictingKeys, key,
                "a client CA requires client_auth_type (set client_auth_type: RequireAndVerifyClientCert)")
        }
        if clientCA == nil && clientAuth.verifiesCertificate {
            throw section.error(.missingKey, "client_auth_type",
                "\(clientAuth.rawValue) needs client_ca_file or client_ca")
        }

        // Only a certificate that is both required and verified makes a SAN mean
        // anything: an unverified one can carry any SAN, and with an optional one a
        // client without a certificate would skip the check.
        let allowedSANs = try section.stringList("client_allowed_sans") ?? []
        if !allowedSANs.isEmpty && clientAuth != .requireAndVerifyClientCert {
            throw section.error(.conflictingKeys, "client_allowed_sans",
                "client_allowed_sans requires client_auth_type RequireAndVerifyClientCert")
        }
        // Scrapeguard's own key (exporter-toolkit would refuse it): patterns, each
        // checked on its own so that a refusal names the entry.
        var sanPatterns: [SANPattern] = []
        for (index, text) in (try section.stringList("client_allowed_san_patterns") ?? []).enumerated() {
            do {
                sanPatterns.append(try SANPattern(text))
            } catch {
                throw section.error(.invalidValue, "client_allowed_san_patterns[\(index)]", "\"\(text)\": \(error.description)")
            }
        }
        if !sanPatterns.isEmpty && clientAuth != .requireAndVerifyClientCert {
            throw section.error(.conflictingKeys, "client_allowed_san_patterns",
                "client_allowed_san_patterns requires client_auth_type RequireAndVerifyClientCert")
        }

        let minimum = try version(&section, "min_version") ?? .tls12
        let maximum = try version(&section, "max_version") ?? .tls13
        if minimum > maximum {
            throw section.error(.conflictingKeys, "min_version", "min_version is greater than max_version")
        }

        var cipherSuites = TLSConfiguration.intermediateCipherSuites
        if let names = try section.stringList("cipher_suites"), !names.isEmpty {
            cipherSuites = []
            for (index, name) in names.enumerated() {
                switch GoTLSNames.cipherSuite(name) {
                case .tls12(let openSSLName): cipherSuites.append(openSSLName)
                case .tls13: break  // not configurable in Go either
                case .insecure:
                    throw ConfigError(.invalidValue, file: section.file, key: "\(section.keyPath("cipher_suites"))[\(index)]",
                                      reason: "unknown cipher suite \(name): insecure suites are refused, as in Go's tls.CipherSuites()")
                case .unknown:
                    throw ConfigError(.invalidValue, file: section.file, key: "\(section.keyPath("cipher_suites"))[\(index)]",
                                      reason: "unknown cipher suite \(name)")
                }
            }
            if cipherSuites.isEmpty && minimum <= .tls12 {
                throw section.error(.invalidValue, "cipher_suites", "lists only TLS 1.3 suites, which are not configurable; TLS 1.2 would have none")
            }
        }
        let preferServer = try section.bool("prefer_server_cipher_suites") ?? true

        var groups = TLSConfiguration.intermediateGroups
        if let names = try section.stringList("curve_preferences"), !names.isEmpty {
            groups = try names.enumerated().map { index, name in
                guard let group = GoTLSNames.group(name) else {
                    throw ConfigError(.invalidValue, file: section.file, key: "\(section.keyPath("curve_preferences"))[\(index)]",
                                      reason: "unknown curve \(name) (one of \(GoTLSNames.groupNames.joined(separator: ", ")))")
                }
                return group
            }
        }

        return TLSConfiguration(
            certificateChain: certificate, privateKey: key, clientCA: clientCA, clientAuth: clientAuth,
            clientAllowedSANs: allowedSANs, clientAllowedSANPatterns: sanPatterns, minimumVersion: minimum, maximumVersion: maximum,
            cipherSuites: cipherSuites, preferServerCipherSuites: preferServer, groups: groups)
    }

    /// Builds the OpenSSL context once, so that an unreadable certificate, a key that
    /// does not fit or an empty CA file is refused with the key that names it.
    private static func checkCredentials(_ tls: TLSConfiguration, texts: [String: String],
                                         section: YAMLConfigReader) throws -> TLSContext {
        do {
            return try TLSContext(configuration: tls, preloaded: texts)
        } catch {
            let key: String
            switch error.credential {
            case .certificate: key = if case .inline = tls.certificateChain { "cert" } else { "cert_file" }
            case .privateKey: key = if case .inline = tls.privateKey { "key" } else { "key_file" }
            case .clientCA: key = if case .inline? = tls.clientCA { "client_ca" } else { "client_ca_file" }
            case nil: key = ""
            }
            throw ConfigError(.invalidValue, file: section.file, key: key.isEmpty ? section.path : section.keyPath(key),
                              reason: error.message + (error.openSSLErrors.first.map { " (\($0))" } ?? ""))
        }
    }

    private static func pemSource(
        _ section: inout YAMLConfigReader, fileKey: String, inlineKey: String, folder: String, required: Bool,
        texts: inout [String: String]
    ) throws -> PEMSource? {
        let path = try section.string(fileKey)
        let inline = try section.string(inlineKey)
        switch (path, inline) {
        case (.some, .some):
            throw section.error(.conflictingKeys, inlineKey, "both \(inlineKey) and \(fileKey) are set: use one")
        case (.some(let path), nil):
            let resolved = PathResolution.resolve(path, against: folder)
            do {
                texts[resolved] = try FileReading.readText(resolved)
            } catch {
                throw section.error(.invalidValue, fileKey, "cannot read \(resolved): \(error.reason)")
            }
            return .file(path: resolved)
        case (nil, .some(let pem)):
            return .inline(pem: pem)
        case (nil, nil):
            if required {
                throw section.error(.missingKey, fileKey, "missing \(fileKey) (or \(inlineKey) with inline PEM)")
            }
            return nil
        }
    }

    private static func version(_ section: inout YAMLConfigReader, _ key: String) throws -> TLSProtocolVersion? {
        guard let text = try section.string(key) else { return nil }
        switch text {
        case "TLS12": return .tls12
        case "TLS13": return .tls13
        case "TLS10", "TLS11":
            throw section.error(.invalidValue, key, "\(text) is not supported: TLS 1.0 and 1.1 are deprecated (RFC 8996); use TLS12 or TLS13")
        default:
            throw section.error(.invalidValue, key, "unknown TLS version \"\(text)\" (one of TLS12, TLS13)")
        }
    }

    private static func readHeaders(_ section: inout YAMLConfigReader) throws -> [HTTPHeaderSetting] {
        let allowed = ["Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options",
                       "X-XSS-Protection", "Strict-Transport-Security"]
        var headers: [HTTPHeaderSetting] = []
        section.consumeAll()
        for (name, node) in section.rawEntries {
            // Names and values are matched exactly, as exporter-toolkit does.
            guard let canonical = allowed.first(where: { $0 == name }) else {
                throw section.error(.invalidValue, name, "header \(name) is not allowed (allowed: \(allowed.joined(separator: ", ")))")
            }
            guard let value = node.scalar?.string else {
                throw section.error(.wrongType, name, "must be a string")
            }
            if value.contains(where: { $0 == "\r" || $0 == "\n" }) {
                throw section.error(.invalidValue, name, "header values cannot contain line breaks")
            }
            switch canonical {
            case "X-Frame-Options" where !value.isEmpty && !["deny", "sameorigin"].contains(value):
                throw section.error(.invalidValue, name, "invalid value \"\(value)\": expected one of deny, sameorigin")
            case "X-Content-Type-Options" where !value.isEmpty && value != "nosniff":
                throw section.error(.invalidValue, name, "invalid value \"\(value)\": expected one of nosniff")
            default:
                break
            }
            if !value.isEmpty {
                headers.append(HTTPHeaderSetting(name: canonical, value: value))
            }
        }
        return headers
    }
}

/// Paths in a configuration file are relative to the file's folder.
enum PathResolution {
    static func folder(of file: String) -> String {
        guard let slash = file.lastIndex(of: "/") else { return "." }
        return slash == file.startIndex ? "/" : String(file[..<slash])
    }

    static func resolve(_ path: String, against folder: String) -> String {
        if path.hasPrefix("/") { return path }
        return folder == "/" ? "/\(path)" : "\(folder)/\(path)"
    }
}
