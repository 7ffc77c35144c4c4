import Foundation
@testable import GatewayCore
import Logging
@testable import scrapeguard
import Testing

/// The configuration as one snapshot: every file it read listed (so the reloader
/// watches each), overrides checked once, and a reload that swaps it in whole or
/// keeps what runs.
@Suite struct ConfigurationLoaderTests {
    /// Files of a gateway with a PII hash key, in a folder of their own.
    struct Files {
        let folder: URL
        var web: String { folder.appendingPathComponent("web-config.yml").path }
        var config: String { folder.appendingPathComponent("scrapeguard.yml").path }
        var key: String { folder.appendingPathComponent("pii.key").path }

        init() throws {
            folder = try makeTemporaryFolder("sg-loader")
            try TestGateway.defaultWebConfig().write(toFile: web, atomically: true, encoding: .utf8)
            try """
                upstream:
                  url: http://127.0.0.1:1/metrics
                pii:
                  hash_key_file: pii.key
                  labels:
                    - names: [user]
                      action: hash
                """.write(toFile: config, atomically: true, encoding: .utf8)
            try "0123456789abcdef0123456789abcdef".write(toFile: key, atomically: true, encoding: .utf8)
        }
    }

    @Test func theSnapshotListsEveryFileItRead() throws {
        let files = try Files()
        let snapshot = try ConfigurationLoader.load(ConfigurationSources(webConfigFile: files.web, configFile: files.config))
        let pki = TestPKI.shared
        #expect(snapshot.files == [files.web, files.config, pki.path("server.crt"), pki.path("server.key"),
                                   pki.path("ca.crt"), files.key])
        #expect(snapshot.gateway.filter.pii.hashKey == Array("0123456789abcdef0123456789abcdef".utf8))
    }

    /// A load reads each file once: `check-config` (the same loader as `serve` and its
    /// reloads) under strace opens every file of the snapshot exactly once.
    @Test func aLoadOpensEachFileOnce() async throws {
        let files = try Files()
        let snapshot = try ConfigurationLoader.load(ConfigurationSources(webConfigFile: files.web, configFile: files.config))
        let trace = files.folder.appendingPathComponent("openat.txt").path
        let result = try await ProcessRunner.run([
            "strace", "-f", "-e", "trace=openat", "-o", trace, Repository.binary, "check-config",
            "--web.config.file=\(files.web)", "--config.file=\(files.config)",
        ])
        try #require(result.status == 0, "\(result.stderr)")
        let opens = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
            .filter { $0.contains("openat(") && !$0.contains("ENOENT") }
        for file in snapshot.files {
            #expect(opens.filter { $0.contains("\"\(file)\"") }.count == 1, "\(file)")
        }
    }

    @Test func theUpstreamOverrideIsCheckedOnceAndApplied() throws {
        let files = try Files()
        let sources = try ConfigurationFlags.sources(webConfigFile: files.web, configFile: files.config,
                                                     upstreamURL: "http://127.0.0.1:8080/other")
        let snapshot = try ConfigurationLoader.load(sources)
        #expect(snapshot.gateway.upstream.url.pathAndQuery == "/other")
        #expect(throws: (any Error).self) {
            try ConfigurationFlags.sources(webConfigFile: files.web, configFile: files.config, upstreamURL: "ftp://x")
        }
    }

    /// A rotated PII key (a Secret) is picked up by the poll, as a rotated
    /// certificate is; a broken one is refused and the running snapshot stays.
    @Test func aRotatedHashKeyReloadsAndABrokenOneIsRefused() async throws {
        let files = try Files()
        let sources = ConfigurationSources(webConfigFile: files.web, configFile: files.config)
        let snapshot = try ConfigurationLoader.load(sources)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let server = try GatewayServer(
            settings: GatewayServerSettings(web: snapshot.web, gateway: snapshot.gateway, listenHost: "127.0.0.1", listenPort: 0),
            tlsContext: snapshot.tlsContext, logger: logger)
        let reloader = ConfigurationReloader(server: server, sources: sources, current: snapshot, pollInterval: nil,
                                             logger: logger)
        #expect(reloader.watchedFiles.contains(files.key))

        reloader.reloadIfChanged()
        #expect(Self.reloads(server, "success") == 0, "nothing changed, nothing reloaded")

        try "fedcba9876543210fedcba9876543210-rotated".write(toFile: files.key, atomically: true, encoding: .utf8)
        reloader.reloadIfChanged()
        #expect(Self.reloads(server, "success") == 1)

        try "short".write(toFile: files.key, atomically: true, encoding: .utf8)
        reloader.reloadIfChanged()
        #expect(Self.reloads(server, "failure") == 1)
        #expect(Self.reloads(server, "success") == 1)
        await server.shutdown()
    }

    static func reloads(_ server: GatewayServer, _ result: String) -> Int {
        let text = String(decoding: server.metrics.exposition(), as: UTF8.self)
        let prefix = "scrapeguard_reloads_total{result=\"\(result)\"} "
        return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) } ?? 0
    }
}
