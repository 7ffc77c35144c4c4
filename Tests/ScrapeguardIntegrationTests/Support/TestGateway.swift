import Foundation
import GatewayCore
import GatewayTLS
import Logging

/// A gateway started in this process on a free loopback port, configured from real
/// files written to a temporary folder, with the shared test PKI.
struct TestGateway {
    static let user = "prometheus"
    static let password = "scrape-me-please"
    /// bcrypt of `password`, made once.
    static let passwordHash: String = BcryptHash.hash(password: password, cost: 10)!

    /// mTLS that requires the Prometheus SPIFFE SAN, plus basic auth.
    static func defaultWebConfig(pki: TestPKI = .shared, extra: String = "") -> String {
        """
        tls_server_config:
          cert_file: \(pki.path("server.crt"))
          key_file: \(pki.path("server.key"))
          client_ca_file: \(pki.path("ca.crt"))
          client_auth_type: RequireAndVerifyClientCert
          client_allowed_sans:
            - spiffe://cluster.local/ns/monitoring/sa/prometheus
        basic_auth_users:
          \(user): \(passwordHash)
        \(extra)
        """
    }

    let server: GatewayServer
    let health: HealthServer?
    let port: Int
    let folder: URL
    let webConfigFile: String
    let configFile: String

    var baseURL: String { "https://127.0.0.1:\(port)" }

    static func start(
        webConfig: String = defaultWebConfig(), upstreamURL: String,
        upstreamExtra: String = "", serverExtra: String = "", healthPort: Int? = nil,
        shutdownTimeout: Duration = .seconds(15)
    ) async throws -> TestGateway {
        let folder = try makeTemporaryFolder("sg-gateway")
        let webFile = folder.appendingPathComponent("web-config.yml").path
        let configFile = folder.appendingPathComponent("scrapeguard.yml").path
        try webConfig.write(toFile: webFile, atomically: true, encoding: .utf8)
        try """
            upstream:
              url: \(upstreamURL)
            \(upstreamExtra)
            server:
              metrics_path: /metrics
            \(serverExtra)
            """.write(toFile: configFile, atomically: true, encoding: .utf8)
        let web = try WebConfiguration.load(file: webFile)
        let gateway = try GatewayConfiguration.load(file: configFile)
        var logger = Logger(label: "test-gateway")
        logger.logLevel = .critical
        let server = try GatewayServer(
            settings: GatewayServerSettings(web: web, gateway: gateway, listenHost: "127.0.0.1", listenPort: 0,
                                            shutdownTimeout: shutdownTimeout),
            logger: logger)
        let address = try await server.start()
        let health = healthPort.map { server.makeHealthServer(host: "127.0.0.1", port: $0) }
        _ = try await health?.start()
        return TestGateway(server: server, health: health, port: address.port!, folder: folder, webConfigFile: webFile,
                           configFile: configFile)
    }

    /// Runs `body` against a gateway in front of an app that serves `up 1`, then
    /// stops both.
    static func withGateway(serverExtra: String = "", _ body: (TestGateway) async throws -> Void) async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let port = try await upstream.start()
        let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(port)/metrics", serverExtra: serverExtra)
        try await body(gateway)
        await gateway.stop()
        await upstream.stop()
    }

    func stop() async {
        await server.stop()
        await health?.stop()
        await server.shutdown()
    }
}

/// curl as the scraper, with the test PKI.
struct Curl {
    struct Response {
        var exitCode: Int32
        var status: Int
        var body: Data
        var headers: String
        var stderr: String
        var bodyText: String { String(decoding: body, as: UTF8.self) }
    }

    var pki: TestPKI = .shared
    /// Client certificate base name in the PKI folder (`client`, `client-expired`), or nil.
    var certificate: String? = "client"
    var credentials: String? = "\(TestGateway.user):\(TestGateway.password)"

    func get(_ url: String, extra: [String] = []) async throws -> Response {
        let folder = try makeTemporaryFolder("sg-curl")
        defer { try? FileManager.default.removeItem(at: folder) }
        let bodyFile = folder.appendingPathComponent("body").path
        let headerFile = folder.appendingPathComponent("headers").path
        var arguments = ["curl", "--silent", "--show-error", "--max-time", "20", "--cacert", pki.path("ca.crt"),
                         "--output", bodyFile, "--dump-header", headerFile, "--write-out", "%{http_code}"]
        if let certificate {
            arguments += ["--cert", pki.path("\(certificate).crt"), "--key", pki.path("\(certificate).key")]
        }
        if let credentials {
            arguments += ["--user", credentials]
        }
        arguments += extra + [url]
        let result = try await ProcessRunner.run(arguments)
        return Response(
            exitCode: result.status, status: Int(result.stdoutText) ?? 0,
            body: (try? Data(contentsOf: URL(fileURLWithPath: bodyFile))) ?? Data(),
            headers: (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? "",
            stderr: result.stderr)
    }
}
