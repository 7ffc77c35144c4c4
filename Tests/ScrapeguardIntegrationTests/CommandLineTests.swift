import Foundation
import GatewayCore
import GatewayTLS
import Testing

/// The `scrapeguard` executable as scripts use it.
@Suite struct CommandLineTests {
    private func writeConfigs(web: String, gateway: String) throws -> (String, String) {
        let folder = try makeTemporaryFolder("sg-cli")
        let webFile = folder.appendingPathComponent("web-config.yml").path
        let configFile = folder.appendingPathComponent("scrapeguard.yml").path
        try web.write(toFile: webFile, atomically: true, encoding: .utf8)
        try gateway.write(toFile: configFile, atomically: true, encoding: .utf8)
        return (webFile, configFile)
    }

    /// `scrapeguard filter --format=protobuf`: a delimited body through the policy
    /// offline, the summary on stderr.
    @Test func filterReadsProtobuf() async throws {
        let (_, config) = try writeConfigs(
            web: TestGateway.defaultWebConfig(),
            gateway: "upstream:\n  url: http://127.0.0.1:8000/metrics\npii:\n  labels:\n    - names: [user_id]\n      action: drop\n")
        let body = ProtoBuilder.delimited([ProtoBuilder.family("logins_total", type: 0, metrics: [
            ProtoBuilder.metric([("user_id", "1"), ("outcome", "ok")], ProtoBuilder.counter(3)),
        ])])
        let result = try await ProcessRunner.run([Repository.binary, "filter", "--config.file=\(config)", "--format=protobuf",
                                                  "--escaping=allow-utf-8"], stdin: Data(body))
        #expect(result.status == 0, "\(result.stderr)")
        #expect([UInt8](result.stdout) == ProtoBuilder.delimited([ProtoBuilder.family("logins_total", type: 0, metrics: [
            ProtoBuilder.metric([("outcome", "ok")], ProtoBuilder.counter(3)),
        ])]))
        #expect(result.stderr.contains("samples in: 1, out: 1, rewritten: 1"), "\(result.stderr)")
    }

    @Test func checkConfigAcceptsGoodFilesAndSaysWhatItChecked() async throws {
        let (web, config) = try writeConfigs(
            web: TestGateway.defaultWebConfig(), gateway: "upstream:\n  url: http://127.0.0.1:8000/metrics\n")
        let result = try await ProcessRunner.run([Repository.binary, "check-config", "--web.config.file=\(web)", "--config.file=\(config)"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutText.contains("\(web): OK"))
        #expect(result.stdoutText.contains("RequireAndVerifyClientCert"))
        #expect(result.stdoutText.contains("\(config): OK: upstream http://127.0.0.1:8000/metrics"))
    }

    @Test(arguments: [
        ("web", "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
         "tls_server_config.cert_file: cannot read"),
        ("gateway", "upstream:\n  urll: http://127.0.0.1:8000/metrics\n", "upstream.urll: unknown key"),
        ("gateway", "upstream:\n  scrape_timeout: ten seconds\n", "upstream.scrape_timeout: invalid duration"),
        ("gateway", "upstream:\n  url: https://example.com/metrics\n", "upstream.url: invalid upstream URL"),
        ("gateway", "server:\n  metrics_path: metrics\n", "server.metrics_path: must be an absolute path"),
        ("gateway", "upstream:\n  allowed_query_params: [\"a=b\"]\n",
         "upstream.allowed_query_params[0]: \"a=b\" is not a plain parameter name"),
        ("gateway", "server:\n  max_unauthenticated_connections: 600\n",
         "server.max_unauthenticated_connections: must be between 1 and max_connections (512)"),
        ("gateway", "upstream:\n  url: http://127.0.0.1:8000/metrics\nfilter:\n  max_family_length: 2GiB\n",
         "filter.max_family_length: must be between 1KiB and 1GiB"),
        ("gateway", "upstream:\n  url: http://127.0.0.1:8000/metrics\nfilter:\n  memo_budget: 4KiB\n",
         "filter.memo_budget: must be 0 (off) or between 64KiB and 1GiB"),
        ("gateway", "server:\n  socket_send_buffer: 1KiB\n",
         "server.socket_send_buffer: must be 0 (the kernel's autotuning) or between 4KiB and 64MiB"),
        ("gateway", "server:\n  max_unauthenticated_connections_per_source: 0\n",
         "server.max_unauthenticated_connections_per_source: must be between 1 and max_unauthenticated_connections (64)"),
    ])
    func checkConfigRefusesNamingFileKeyAndReason(_ which: String, _ text: String, _ expected: String) async throws {
        let good = "upstream:\n  url: http://127.0.0.1:8000/metrics\n"
        let (web, config) = try writeConfigs(
            web: which == "web" ? text : TestGateway.defaultWebConfig(), gateway: which == "gateway" ? text : good)
        let result = try await ProcessRunner.run([Repository.binary, "check-config", "--web.config.file=\(web)", "--config.file=\(config)"])
        #expect(result.status == 1)
        let file = which == "web" ? web : config
        #expect(result.stderr.contains("\(file): \(expected)"), "\(result.stderr)")
    }

    @Test func hashPasswordMakesAHashThatVerifies() async throws {
        let result = try await ProcessRunner.run([Repository.binary, "hash-password", "--cost", "5"], stdin: Data("s3cret pass\n".utf8))
        #expect(result.status == 0, "\(result.stderr)")
        let hash = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(hash.hasPrefix("$2y$05$"))
        #expect(BcryptHash.verify(password: "s3cret pass", hash: hash) == .match)
        #expect(BcryptHash.verify(password: "s3cret", hash: hash) == .mismatch)
        let empty = try await ProcessRunner.run([Repository.binary, "hash-password"], stdin: Data())
        #expect(empty.status == 1)
    }

    @Test func demoScrapesOnceOverMutualTLS() async throws {
        let result = try await ProcessRunner.run([
            Repository.binary, "demo", "--once", "--web.listen-address", "127.0.0.1:0",
            "--certs.script", Repository.certsScript,
        ], timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        let output = result.stdoutText
        #expect(output.contains("app_processed_tasks_total "))
        #expect(output.contains("app_active_workers "))
        // The demo's policy at work: the app's e-mails hashed, its IPs redacted.
        let scraped = output.components(separatedBy: "\n").filter { $0.hasPrefix("app_http_requests_total{") }
        #expect(scraped.count == 2, "\(output)")
        #expect(scraped.allSatisfy { $0.contains("user_email=\"h_") && $0.contains("client_ip=\"redacted\"") }, "\(scraped)")
        #expect(!scraped.contains { $0.contains("@") || $0.contains("203.0.113.7") })
        #expect(output.contains("curl --silent --show-error --fail --cacert"))
        #expect(output.contains("the same with a wrong password: HTTP 401"))
    }

    @Test func serveRunsUntilSIGTERMAndExitsZero() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let (web, config) = try writeConfigs(
            web: TestGateway.defaultWebConfig(), gateway: "upstream:\n  url: http://127.0.0.1:9/metrics\n")
        let port = try await freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Repository.binary)
        process.arguments = [
            "serve", "--web.config.file=\(web)", "--config.file=\(config)",
            "--web.listen-address=127.0.0.1:\(port)", "--upstream.url=http://127.0.0.1:\(upstreamPort)/metrics",
        ]
        process.standardError = FileHandle.nullDevice
        try process.run()
        var response = try await Curl().get("https://127.0.0.1:\(port)/metrics")
        for _ in 0..<50 where response.status != 200 {
            try await Task.sleep(for: .milliseconds(100))
            response = try await Curl().get("https://127.0.0.1:\(port)/metrics")
        }
        #expect(response.status == 200, "the --upstream.url flag overrides the file")
        #expect(response.bodyText == "up 1\n")
        process.terminate()  // SIGTERM
        process.waitUntilExit()
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
        await upstream.stop()
    }
}

/// A loopback port that is free right now.
func freePort() async throws -> Int {
    let result = try await ProcessRunner.run(["python3", "-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1]); s.close()"])
    return Int(result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))!
}
