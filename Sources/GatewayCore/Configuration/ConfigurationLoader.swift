import GatewayTLS

/// Where the configuration comes from: the two files and what the command line
/// overrides, the overrides checked once, at start-up.
package struct ConfigurationSources: Sendable {
    package var webConfigFile: String
    package var configFile: String
    /// `--upstream.url`: replaces `upstream.url` of the config file.
    package var upstreamURL: UpstreamURL?

    package init(webConfigFile: String, configFile: String, upstreamURL: UpstreamURL? = nil) {
        self.webConfigFile = webConfigFile
        self.configFile = configFile
        self.upstreamURL = upstreamURL
    }
}

/// Everything a start or a reload puts in place, built whole before anything is
/// swapped: both files read and checked, the overrides applied, the TLS context
/// made, and the list of every file read on the way, which is what the reloader
/// watches (so a file the configuration reads is a file a change of which reloads).
package struct ConfigurationSnapshot: Sendable {
    package var web: WebConfiguration
    package var gateway: GatewayConfiguration
    package var tlsContext: TLSContext
    /// The two configuration files, then the certificate, key and CA files and the
    /// files scrapeguard.yml names (the PII hash key).
    package var files: [String]
}

/// Reads the configuration, for `serve`, its reloads and `check-config` alike.
package enum ConfigurationLoader {
    package static func load(_ sources: ConfigurationSources) throws -> ConfigurationSnapshot {
        let (web, tlsContext) = try WebConfiguration.loadWithContext(file: sources.webConfigFile)
        var gateway = try GatewayConfiguration.load(file: sources.configFile)
        if let url = sources.upstreamURL {
            gateway.upstream.url = url
        }
        var files = [sources.webConfigFile, sources.configFile]
        for file in web.certificateFiles + gateway.referencedFiles where !files.contains(file) {
            files.append(file)
        }
        return ConfigurationSnapshot(web: web, gateway: gateway, tlsContext: tlsContext, files: files)
    }
}
