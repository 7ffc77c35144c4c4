import Foundation
import GatewayCore
import Testing

/// The gateway's own metrics, a Unix-socket upstream, and structured logs.
@Suite struct OperationsTests {
    @Test func ownMetricsAreBehindAuthAndPassPromtool() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics")
        #expect(try await Curl().get("\(gateway.baseURL)/metrics").status == 200)
        #expect(try await Curl(credentials: "\(TestGateway.user):wrong").get("\(gateway.baseURL)/metrics").status == 401)
        #expect(try await Curl(credentials: nil).get("\(gateway.baseURL)/gateway/metrics").status == 401)

        let response = try await Curl().get("\(gateway.baseURL)/gateway/metrics")
        #expect(response.status == 200)
        let text = response.bodyText
        for expected in [
            "scrapeguard_scrapes_total{result=\"success\"} 1",
            "scrapeguard_auth_failures_total{reason=\"wrong_password\"} 1",
            "scrapeguard_auth_failures_total{reason=\"missing_credentials\"} 1",
            "scrapeguard_upstream_received_bytes_total 5",
            "scrapeguard_response_sent_bytes_total 5",
            "scrapeguard_upstream_request_duration_seconds_count 1",
            "scrapeguard_reloads_total{result=\"failure\"} 0",
            "# TYPE scrapeguard_open_connections gauge",
        ] {
            #expect(text.contains(expected), "\(expected) in:\n\(text)")
        }
        #expect(text.contains("scrapeguard_tls_handshakes_total 4"), "\(text)")
        let expiry = text.split(separator: "\n").first { $0.hasPrefix("scrapeguard_certificate_expiry_timestamp_seconds{certificate=\"server\"}") }
        let expiryValue = try #require(expiry.flatMap { Double($0.split(separator: " ").last ?? "") })
        #expect(expiryValue > Date().timeIntervalSince1970, "the server certificate's notAfter")

        guard ProcessRunner.has("promtool") else {
            Issue.record("promtool is not installed: run `make test-deps` (Debian's prometheus package)")
            return
        }
        let check = try await ProcessRunner.run(["promtool", "check", "metrics"], stdin: response.body)
        #expect(check.status == 0, "promtool check metrics: \(check.stdoutText) \(check.stderr)")
        await gateway.stop()
        await upstream.stop()
    }

    @Test func readinessFollowsTheApp() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let healthPort = try await freePort()
        let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics", healthPort: healthPort)
        func get(_ path: String) async throws -> String {
            try await ProcessRunner.run(["curl", "-s", "-w", " %{http_code}", "http://127.0.0.1:\(healthPort)\(path)"]).stdoutText
        }
        #expect(try await get("/healthz") == "ok\n 200")
        #expect(try await get("/readyz") == "ready\n 200")
        #expect(try await get("/metrics") == "not found\n 404", "no metrics on the health port")
        await upstream.stop()
        try await Task.sleep(for: .seconds(11))  // past the freshness of the last answer
        #expect(try await get("/readyz") == "not ready: the app does not accept connections\n 503")
        #expect(try await get("/healthz") == "ok\n 200")
        await gateway.stop()
    }

    /// The server's lifecycle runs one way: a second start is refused with a reason and
    /// leaves the first serving; a stopped server does not start again.
    @Test func theServerStartsOnce() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics")
        let again = await #expect(throws: GatewayServer.LifecycleError.self) { try await gateway.server.start() }
        #expect(again?.description == "cannot start a gateway server that is serving")
        #expect(try await Curl().get("\(gateway.baseURL)/metrics").status == 200, "the first start still serves")
        await gateway.server.stop()
        await #expect(throws: GatewayServer.LifecycleError.self) { try await gateway.server.start() }
        await gateway.stop()
        await upstream.stop()
    }

    @Test func upstreamOverAUnixSocket() async throws {
        let upstream = TestUpstream(body: ProxyTests.body)
        let socket = try makeTemporaryFolder("sg-unix").appendingPathComponent("app.sock").path
        try await upstream.start(unixSocketPath: socket)
        let gateway = try await TestGateway.start(upstreamURL: "unix://\(socket)", upstreamExtra: "  path: /chunked")
        let response = try await Curl().get("\(gateway.baseURL)/metrics")
        #expect(response.status == 200, "\(response.stderr)")
        #expect(Array(response.body) == ProxyTests.body)
        #expect(upstream.receivedRequests.last?.uri == "/chunked")
        await gateway.stop()
        await upstream.stop()
    }

    /// TCP_NODELAY is a TCP option: set on every accepted connection and on the
    /// connection to the app at the TCP level. Set as a socket-level option instead
    /// (option 1 there is SO_DEBUG), it did nothing as root and, without
    /// CAP_NET_ADMIN (uid 65532 in the pod), failed with EACCES and closed every
    /// connection the gateway accepted.
    @Test func noDelayIsSetAsATCPOptionOnEveryConnection() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let (folder, web, config) = try writeServeConfig(gateway: "upstream:\n  url: http://127.0.0.1:\(upstreamPort)/metrics\n")
        let trace = folder.appendingPathComponent("setsockopt.trace").path
        let serve = try await ServeProcess(folder: folder, webConfigFile: web, configFile: config,
                                           launcher: ["strace", "-f", "-e", "trace=setsockopt", "-o", trace])
        #expect(try await Curl().get("\(serve.baseURL)/metrics").status == 200)
        // SIGTERM to the gateway, not to strace (which would detach and leave it running).
        let strace = serve.process.processIdentifier
        let children = try String(contentsOfFile: "/proc/\(strace)/task/\(strace)/children", encoding: .utf8)
        let gateway = try #require(children.split(separator: " ").first.flatMap { Int32($0) })
        kill(gateway, SIGTERM)
        #expect(try await serve.waitForExit(timeout: .seconds(10)) == 0, "\(serve.log)")
        let calls = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
            .filter { $0.contains("setsockopt(") }
        // The health check, the scrape, the fetch from the app: three connections, each
        // with a non-zero value ("\1\0...": NIO passes the option as a C int or wider).
        let noDelay = calls.filter { $0.contains("SOL_TCP, TCP_NODELAY, \"\\1") && $0.hasSuffix("= 0") }
        #expect(noDelay.count >= 3, "\(calls.joined(separator: "\n"))")
        #expect(!calls.contains { $0.contains("SO_DEBUG") || $0.contains("= -1") }, "\(calls.joined(separator: "\n"))")
        await upstream.stop()
    }

    @Test func jsonLogsAreOneObjectALineAndCarryNoSecrets() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let (folder, web, config) = try writeServeConfig(gateway: "upstream:\n  url: http://127.0.0.1:\(upstreamPort)/metrics\n")
        let serve = try await ServeProcess(folder: folder, webConfigFile: web, configFile: config,
                                           extraArguments: ["--log.format=json", "--log.level=debug"])
        let secret = "hunter2-do-not-log"
        #expect(try await Curl(credentials: "\(TestGateway.user):\(secret)").get("\(serve.baseURL)/metrics",
                                                                               extra: ["-H", "X-Secret-Header: \(secret)"]).status == 401)
        #expect(try await Curl().get("\(serve.baseURL)/metrics", extra: ["-H", "X-Secret-Header: \(secret)"]).status == 200)
        serve.signal(SIGTERM)
        #expect(try await serve.waitForExit(timeout: .seconds(10)) == 0)

        let lines = serve.log.split(separator: "\n")
        #expect(lines.count >= 4)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] is String && object?["msg"] is String && object?["time"] is String, "\(line)")
        }
        #expect(serve.log.contains("\"msg\":\"authentication failed\""))
        #expect(serve.log.contains("\"reason\":\"wrong_password\""))
        #expect(!serve.log.contains(secret), "no password or client header value is ever logged")
        #expect(!serve.log.contains(TestGateway.password))
        #expect(!serve.log.contains("$2y$"), "no hash either")
        await upstream.stop()
    }
}
