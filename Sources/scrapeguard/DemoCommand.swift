import ArgumentParser
import GatewayCore
import GatewayTLS
import Logging
import ServiceLifecycle
import Subprocess
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The main job on an embedded default: dev certificates, a demo app, the gateway in
/// front of it with a PII policy, one real scrape with curl over mTLS and basic auth,
/// then serving.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a demo app behind the gateway, scrape it once over mTLS, keep serving."
    )

    @Option(name: .customLong("web.listen-address"), help: "HOST:PORT for the gateway.")
    var listenAddress: String = "127.0.0.1:9443"

    @Option(name: .customLong("certs.script"), help: "The dev certificate script.")
    var certsScript: String = "certs/gen-dev-certs.sh"

    @Flag(help: "Exit after the first scrape instead of serving.")
    var once = false

    @Option(name: .customLong("log.level"))
    var logLevel: String = "warning"

    static let user = "prometheus"
    static let password = "scrapeguard-demo"

    func run() async throws {
        let logger = try Logging.make(level: logLevel, format: "logfmt")
        let folder = try makeFolder()
        say("1. dev certificates in \(folder)")
        try await runProcess("/bin/bash", [certsScript, folder], quiet: true)

        let app = DemoMetricsApp()
        let appPort = try await app.start()
        say("2. demo app (the seed article's exporter) on http://127.0.0.1:\(appPort)/metrics, loopback only")

        guard let hash = BcryptHash.hash(password: Self.password, cost: 10) else {
            throw ValidationError("bcrypt failed")
        }
        let webConfig = """
            tls_server_config:
              cert_file: server.crt
              key_file: server.key
              client_ca_file: ca.crt
              client_auth_type: RequireAndVerifyClientCert
              client_allowed_sans:
                - spiffe://cluster.local/ns/monitoring/sa/prometheus
            basic_auth_users:
              \(Self.user): \(hash)

            """
        let gatewayConfig = """
            upstream:
              url: http://127.0.0.1:\(appPort)/metrics
              scrape_timeout: 10s
            pii:
              hash_key_file: pii.key
              detectors:
                - detector: email
                  action: hash
                - detector: ipv4
                  action: redact
            limits:
              series_per_metric: 1000

            """
        // A fresh HMAC key: the same e-mail maps to the same pseudonym for this run only.
        var generator = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16)
        }.joined()
        try write(key, to: "\(folder)/pii.key")
        try write(webConfig, to: "\(folder)/web-config.yml")
        try write(gatewayConfig, to: "\(folder)/scrapeguard.yml")

        let web = try WebConfiguration.load(file: "\(folder)/web-config.yml")
        let gateway = try GatewayConfiguration.load(file: "\(folder)/scrapeguard.yml")
        let (host, port) = try ListenAddress.parse(listenAddress, flag: "--web.listen-address")
        let server = try GatewayServer(
            settings: GatewayServerSettings(web: web, gateway: gateway, listenHost: host, listenPort: port), logger: logger)
        let address = try await server.start()
        let url = "https://localhost:\(address.port ?? port)/metrics"
        say("3. scrapeguard on \(url) (mutual TLS, client SAN spiffe://cluster.local/ns/monitoring/sa/prometheus, basic auth),")
        say("   with the policy in \(folder)/scrapeguard.yml: e-mail addresses hashed, IP addresses redacted")

        let curl = [
            "curl", "--silent", "--show-error", "--fail",
            "--cacert", "\(folder)/ca.crt", "--cert", "\(folder)/client.crt", "--key", "\(folder)/client.key",
            "--user", "\(Self.user):\(Self.password)", url,
        ]
        say("4. one scrape, as Prometheus would make it (the app itself serves alice@example.com and 203.0.113.7):")
        say("   \(curl.joined(separator: " "))\n")
        try await runProcess("/usr/bin/env", curl, quiet: false)
        let refused = ["curl", "--silent", "--cacert", "\(folder)/ca.crt", "--output", "/dev/null",
                       "--write-out", "%{http_code}", "--cert", "\(folder)/client.crt", "--key", "\(folder)/client.key",
                       "--user", "\(Self.user):wrong", url]
        let status = try await captureProcess("/usr/bin/env", refused)
        say("\n5. the same with a wrong password: HTTP \(status); without a client certificate the handshake itself fails.")

        if once {
            await server.stop()
            await server.shutdown()
            await app.stop()
            return
        }
        say("\nServing until Ctrl-C. Try it:\n  \(curl.joined(separator: " "))")
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: DemoWaiter())], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await server.stop()
        await server.shutdown()
        await app.stop()
    }

    private func makeFolder() throws -> String {
        let temporary = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((temporary + "/scrapeguard-demo-XXXXXX").utf8CString)
        guard let result = mkdtemp(&template) else {
            throw ValidationError("cannot make a temporary folder in \(temporary)")
        }
        return String(cString: result)
    }

    /// Writes a small file readable by its owner only (the HMAC key is a secret).
    private func write(_ text: String, to path: String) throws {
        let file = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .truncate],
                                           permissions: [.ownerReadWrite])
        try file.closeAfter { _ = try file.writeAll(Array(text.utf8)) }
    }

    private func runProcess(_ executable: String, _ arguments: [String], quiet: Bool) async throws {
        let status = if quiet {
            try await Subprocess.run(.path(FilePath(executable)), arguments: Arguments(arguments), output: .discarded,
                                     error: .currentStandardError).terminationStatus
        } else {
            try await Subprocess.run(.path(FilePath(executable)), arguments: Arguments(arguments),
                                     output: .currentStandardOutput, error: .currentStandardError).terminationStatus
        }
        guard status.isSuccess else {
            throw ValidationError("\(arguments.first ?? executable) failed: \(status)")
        }
    }

    private func captureProcess(_ executable: String, _ arguments: [String]) async throws -> String {
        let result = try await Subprocess.run(.path(FilePath(executable)), arguments: Arguments(arguments),
                                              output: .string(limit: 4096), error: .currentStandardError)
        return result.standardOutput
    }
}

/// Keeps the demo's service group alive until a signal arrives.
private struct DemoWaiter: Service {
    func run() async throws {
        try? await gracefulShutdown()
    }
}
