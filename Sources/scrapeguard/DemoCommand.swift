import ArgumentParser
import Foundation
import GatewayCore
import GatewayTLS
import Logging
import ServiceLifecycle

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
        try runProcess("/bin/bash", [certsScript, folder], quiet: true)

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
        let key = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        try key.write(toFile: "\(folder)/pii.key", atomically: true, encoding: .utf8)
        try webConfig.write(toFile: "\(folder)/web-config.yml", atomically: true, encoding: .utf8)
        try gatewayConfig.write(toFile: "\(folder)/scrapeguard.yml", atomically: true, encoding: .utf8)

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
        try runProcess("/usr/bin/env", curl, quiet: false)
        let refused = ["curl", "--silent", "--cacert", "\(folder)/ca.crt", "--output", "/dev/null",
                       "--write-out", "%{http_code}", "--cert", "\(folder)/client.crt", "--key", "\(folder)/client.key",
                       "--user", "\(Self.user):wrong", url]
        let status = try captureProcess("/usr/bin/env", refused)
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
        var template = Array((NSTemporaryDirectory() + "scrapeguard-demo-XXXXXX").utf8CString)
        guard let result = mkdtemp(&template) else {
            throw ValidationError("cannot make a temporary folder")
        }
        return String(cString: result)
    }

    private func runProcess(_ executable: String, _ arguments: [String], quiet: Bool) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if quiet { process.standardOutput = FileHandle.nullDevice }
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("\(arguments.first ?? executable) failed with status \(process.terminationStatus)")
        }
    }

    private func captureProcess(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Keeps the demo's service group alive until a signal arrives.
private struct DemoWaiter: Service {
    func run() async throws {
        try? await gracefulShutdown()
    }
}
