import Foundation
import Testing

/// SIGTERM as Kubernetes sends it: what is in flight finishes, what is idle closes at
/// once, nothing new gets in, and the process exits 0.
@Suite struct LifecycleTests {
    @Test func sigtermDuringASlowScrapeLetsItFinishAndRefusesNewConnections() async throws {
        let upstream = TestUpstream(body: ProxyTests.body, slowDelay: .milliseconds(1500))
        let upstreamPort = try await upstream.start()
        let (folder, web, config) = try writeServeConfig(gateway: "upstream:\n  url: http://127.0.0.1:\(upstreamPort)/slow\n")
        let serve = try await ServeProcess(folder: folder, webConfigFile: web, configFile: config,
                                           extraArguments: ["--web.shutdown-timeout=20s"])
        #expect(try await serve.health("/readyz").status == 200)

        let url = "\(serve.baseURL)/metrics"
        async let slowScrape = Task.detached { try await Curl().get(url) }.value
        try await Task.sleep(for: .milliseconds(500))
        serve.signal(SIGTERM)
        try await Task.sleep(for: .milliseconds(300))

        // Draining: readiness is false and the listener is closed.
        let ready = try await serve.health("/readyz")
        #expect(ready.status == 503 && ready.body.contains("draining"), "\(ready) \(serve.log)")
        let late = try await Curl().get("\(serve.baseURL)/metrics", extra: ["--connect-timeout", "2"])
        #expect(late.exitCode == 7, "a new connection is refused: curl exit \(late.exitCode) \(late.stderr)")

        let response = try await slowScrape
        #expect(response.status == 200)
        #expect(Array(response.body) == ProxyTests.body, "the in-flight scrape completes whole")
        #expect(response.headers.lowercased().contains("connection: close"))
        let status = try await serve.waitForExit(timeout: .seconds(10))
        #expect(status == 0, "\(serve.log)")
        await upstream.stop()
    }

    /// Ten kept-alive, idle scrape connections do not hold the drain: with a 30 s
    /// shutdown timeout the process still exits within seconds, and every one of them
    /// is closed by the gateway.
    @Test func sigtermClosesIdleKeepAliveConnectionsAtOnce() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let (folder, web, config) = try writeServeConfig(gateway: "upstream:\n  url: http://127.0.0.1:\(upstreamPort)/metrics\n")
        let serve = try await ServeProcess(folder: folder, webConfigFile: web, configFile: config,
                                           extraArguments: ["--web.shutdown-timeout=30s"])
        let pki = TestPKI.shared
        let script = """
            import base64, socket, ssl, sys, time, os, signal
            port, pid = int(sys.argv[1]), int(sys.argv[5])
            ctx = ssl.create_default_context(cafile=sys.argv[2])
            ctx.load_cert_chain(sys.argv[3], sys.argv[4])
            auth = base64.b64encode(sys.argv[6].encode()).decode()
            conns = []
            for _ in range(10):
                t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
                t.sendall(f"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Basic {auth}\\r\\n\\r\\n".encode())
                data = b""
                while not data.endswith(b"0\\r\\n\\r\\n"):
                    chunk = t.recv(65536)
                    if not chunk: sys.exit("closed before the response ended")
                    data += chunk
                conns.append(t)
            start = time.monotonic()
            os.kill(pid, signal.SIGTERM)
            closed = 0
            for t in conns:
                t.settimeout(10)
                try:
                    if t.recv(1) == b"": closed += 1
                except ssl.SSLError:
                    closed += 1
            print(closed, round(time.monotonic() - start, 2))
            """
        let result = try await python(script, [
            "\(serve.port)", pki.path("ca.crt"), pki.path("client.crt"), pki.path("client.key"),
            "\(serve.process.processIdentifier)", "\(TestGateway.user):\(TestGateway.password)",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let fields = result.stdoutText.split(separator: " ")
        #expect(fields.first == "10", "all ten idle connections were closed by the gateway: \(result.stdoutText)")
        let status = try await serve.waitForExit(timeout: .seconds(10))
        #expect(status == 0, "exited before the 30 s shutdown timeout: \(serve.log)")
        await upstream.stop()
    }

    @Test func aSecondSignalEndsTheDrainAtOnce() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8), slowDelay: .seconds(20))
        let upstreamPort = try await upstream.start()
        let (folder, web, config) = try writeServeConfig(gateway: "upstream:\n  url: http://127.0.0.1:\(upstreamPort)/slow\n  scrape_timeout: 30s\n")
        let serve = try await ServeProcess(folder: folder, webConfigFile: web, configFile: config,
                                           extraArguments: ["--web.shutdown-timeout=30s"])
        let url = "\(serve.baseURL)/metrics"
        async let stuckScrape = Task.detached { try await Curl().get(url) }.value
        try await Task.sleep(for: .milliseconds(500))
        serve.signal(SIGTERM)
        try await Task.sleep(for: .milliseconds(500))
        #expect(serve.process.isRunning, "the first signal waits for the in-flight scrape")
        serve.signal(SIGTERM)
        let status = try await serve.waitForExit(timeout: .seconds(10))
        #expect(status == 0, "\(serve.log)")
        let response = try await stuckScrape
        #expect(response.status != 200)
        #expect(serve.log.contains("second signal"))
        await upstream.stop()
    }
}
