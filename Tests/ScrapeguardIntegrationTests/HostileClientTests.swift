import Foundation
import GatewayCore
import GatewayTLS
import Testing

/// The attacks and mistakes of the issue "hold up under hostile clients", each done for
/// real against a gateway on a socket (Python's `ssl` or curl as the client), with the
/// outcome asserted.
@Suite struct HostileClientTests {
    /// Opens argv[6] TLS connections (with the client certificate: the handshake
    /// succeeds), sends argv[7] on each (`\r\n` written as the four characters
    /// `\\r\\n`), then reads each for at most argv[8] seconds. Prints one line a
    /// connection: the response's status code (or `-`) and `closed` or `open`.
    static let rawRequests = TLSClientScripts.prelude + """
        count, request, wait = int(sys.argv[6]), sys.argv[7].replace("\\\\r\\\\n", "\\r\\n").encode("latin-1"), float(sys.argv[8])
        conns = []
        for _ in range(count):
            t = connect()
            t.sendall(request)
            conns.append(t)
        deadline = time.monotonic() + wait
        for t in conns:
            data, closed = b"", False
            t.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                while True:
                    chunk = t.recv(65536)
                    if not chunk:
                        closed = True
                        break
                    data += chunk
            except (socket.timeout, TimeoutError):
                pass
            except (ConnectionResetError, ssl.SSLError):
                closed = True
            status = data.split(b" ")[1].decode() if data.startswith(b"HTTP/1.") else "-"
            print(status, "closed" if closed else "open")
        """

    private func rawRequests(_ gateway: TestGateway, count: Int, _ request: String, wait: Double = 5) async throws -> [String] {
        let arguments = TLSClientScripts.arguments(port: gateway.port) + ["\(count)", request, "\(wait)"]
        let result = try await python(Self.rawRequests, arguments, timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        return result.stdoutText.split(separator: "\n").map(String.init)
    }

    private func ownMetrics(_ gateway: TestGateway) -> String {
        String(decoding: gateway.server.metrics.exposition(), as: UTF8.self)
    }

    /// 20 connections without credentials announce a body of a gigabyte and send none:
    /// each is answered 413 and closed at once (nothing waits for the body, no auth
    /// is asked), and a legitimate scrape made meanwhile succeeds. A chunked body and
    /// `Expect: 100-continue` get the same, and no `100 Continue`.
    @Test func announcedBodiesAreRefusedAtTheHead() async throws {
        try await TestGateway.withGateway { gateway in
            let request = "POST /metrics HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 1000000000\\r\\n\\r\\n"
            async let stalled = rawRequests(gateway, count: 20, request)
            let scrape = try await Curl().get("\(gateway.baseURL)/metrics")
            #expect(scrape.status == 200 && scrape.bodyText == "up 1\n")
            #expect(try await stalled == Array(repeating: "413 closed", count: 20))

            let chunked = try await rawRequests(
                gateway, count: 1, "POST /metrics HTTP/1.1\\r\\nHost: x\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n5\\r\\nab")
            #expect(chunked == ["413 closed"])
            let expecting = try await rawRequests(
                gateway, count: 1, "PUT /metrics HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 5\\r\\nExpect: 100-continue\\r\\n\\r\\n")
            #expect(expecting == ["413 closed"], "a 413, not a 100 Continue")
            #expect(ownMetrics(gateway).contains("scrapeguard_requests_refused_total{reason=\"request_body\"} 22"),
                    "\(ownMetrics(gateway))")
        }
    }

    /// RFC 9112: an HTTP/1.1 request without `Host`, or with two, is 400 (and the
    /// connection closes); HTTP/1.0 may leave it out.
    @Test func hostIsRequiredOnceOnHTTP11() async throws {
        try await TestGateway.withGateway { gateway in
            let missing = try await rawRequests(gateway, count: 1, "GET /metrics HTTP/1.1\\r\\n\\r\\n")
            #expect(missing == ["400 closed"])
            let twice = try await rawRequests(gateway, count: 1, "GET /metrics HTTP/1.1\\r\\nHost: a\\r\\nHost: b\\r\\n\\r\\n")
            #expect(twice == ["400 closed"])
            let old = try await rawRequests(gateway, count: 1, "GET /metrics HTTP/1.0\\r\\n\\r\\n")
            #expect(old == ["401 closed"], "HTTP/1.0 without Host reaches auth")
            let metrics = ownMetrics(gateway)
            #expect(metrics.contains("scrapeguard_requests_refused_total{reason=\"missing_host\"} 1"), "\(metrics)")
            #expect(metrics.contains("scrapeguard_requests_refused_total{reason=\"repeated_host\"} 1"), "\(metrics)")
        }
    }

    /// bcrypt over the password's bytes as Go's bcrypt (exporter-toolkit's) reads them:
    /// a NUL and what follows it count, so `password\0anything` is not `password`.
    @Test func aPasswordWithANulByteIsRefused() async throws {
        try await TestGateway.withGateway { gateway in
            for suffix in ["\0anything", "\0"] {
                let credentials = Data("\(TestGateway.user):\(TestGateway.password)\(suffix)".utf8).base64EncodedString()
                let response = try await Curl(credentials: nil).get(
                    "\(gateway.baseURL)/metrics", extra: ["-H", "Authorization: Basic \(credentials)"])
                #expect(response.status == 401, "suffix \(suffix.debugDescription)")
            }
            #expect(try await Curl().get("\(gateway.baseURL)/metrics").status == 200)
        }
    }

    /// Past 72 bytes only the first 72 count, in Go's comparison as here (the Blowfish
    /// key schedule reads 72 bytes); a hash of more than 72 bytes is not made.
    @Test func passwordsPastSeventyTwoBytesBehaveAsGo() async throws {
        let seventyTwo = String(repeating: "p", count: 72)
        let hash = try #require(BcryptHash.hash(password: seventyTwo, cost: 4))
        #expect(BcryptHash.verify(password: seventyTwo, hash: hash) == .match)
        #expect(BcryptHash.verify(password: seventyTwo + "X", hash: hash) == .match, "Go's CompareHashAndPassword matches too")
        #expect(BcryptHash.verify(password: String(seventyTwo.dropLast()), hash: hash) == .mismatch)
        #expect(BcryptHash.hash(password: seventyTwo + "X", cost: 4) == nil, "as Go's GenerateFromPassword: too long")
        #expect(BcryptHash.hash(password: "pw\0x", cost: 4) == nil)
        let refused = try await ProcessRunner.run([Repository.binary, "hash-password", "--cost", "4"],
                                                  stdin: Data((seventyTwo + "X\n").utf8))
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("73 bytes; bcrypt reads at most 72"), "\(refused.stderr)")
    }
}

/// Strangers cannot take the connections a scraper needs.
@Suite struct ConnectionBudgetTests {
    /// Holds argv[2] bare TCP connections to port argv[1] from source address argv[3]
    /// (sending nothing), opening a new one whenever one is closed, for argv[4]
    /// seconds; prints how many it opened in all.
    static let bareFlood = """
        import selectors, socket, sys, time
        port, count, source, seconds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
        sel = selectors.DefaultSelector()
        opened = 0
        def open_one():
            global opened
            s = socket.socket()
            s.bind((source, 0))
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            sel.register(s, selectors.EVENT_READ)
            opened += 1
        for _ in range(count):
            open_one()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for key, _ in sel.select(timeout=0.2):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    s.close()
                    open_one()
        print(opened)
        """

    /// 512 bare TCP connections from another address, held open and replaced as they
    /// are closed, for 20 s: a legitimate scrape every 2 s succeeds every time, and
    /// the strangers are counted as they are pushed out.
    @Test func bareConnectionsCannotLockOutTheScraper() async throws {
        try await TestGateway.withGateway { gateway in
            let seconds = 20
            async let flood = python(Self.bareFlood, ["\(gateway.port)", "512", "127.0.0.2", "\(seconds)"], timeout: 60)
            try await Task.sleep(for: .seconds(1))
            var statuses: [Int] = []
            for _ in 0..<(seconds / 2 - 1) {
                statuses.append(try await Curl().get("\(gateway.baseURL)/metrics").status)
                try await Task.sleep(for: .seconds(2))
            }
            let flooded = try await flood
            #expect(flooded.status == 0, "\(flooded.stderr)")
            #expect(statuses == Array(repeating: 200, count: seconds / 2 - 1), "\(statuses)")
            let metrics = String(decoding: gateway.server.metrics.exposition(), as: UTF8.self)
            #expect(metrics.contains("scrapeguard_connections_rejected_total{reason=\"unauthenticated_per_source\"}"),
                    "\(metrics)")
            #expect(Int(flooded.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 > 512,
                    "the flood replaced closed connections: \(flooded.stdoutText)")
        }
    }
}

extension HostileClientTests {
    /// `rate_limit` of 3 a minute: ten requests without credentials from a stranger's
    /// address get 401 three times and then 429, and the scraper, from its own
    /// address, is still served three times, then limited (the total is its budget).
    @Test func aStrangerSpendsOnlyItsOwnRateLimit() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(
            webConfig: TestGateway.defaultWebConfig(extra: "rate_limit:\n  interval: 1m\n  burst: 3"),
            upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics")
        var stranger: [Int] = []
        for _ in 0..<10 {
            stranger.append(try await Curl(credentials: nil).get("\(gateway.baseURL)/metrics", extra: ["--interface", "127.0.0.2"]).status)
        }
        #expect(stranger == [401, 401, 401] + Array(repeating: 429, count: 7), "\(stranger)")
        var scraper: [Int] = []
        for _ in 0..<4 {
            scraper.append(try await Curl().get("\(gateway.baseURL)/metrics").status)
        }
        #expect(scraper == [200, 200, 200, 429], "\(scraper)")
        #expect(ownMetrics(gateway).contains("scrapeguard_requests_refused_total{reason=\"rate_limited\"} 8"))
        await gateway.stop()
        await upstream.stop()
    }

    /// With a budget of 8 for unauthenticated connections, 18 strangers that finish
    /// the handshake and send nothing: the 10 oldest are closed as the newer arrive,
    /// the 8 newest wait for their read-header deadline, and a scrape still succeeds.
    @Test func strangersPastTheBudgetAreClosedOldestFirst() async throws {
        let budget = "  max_unauthenticated_connections: 8\n  max_unauthenticated_connections_per_source: 8"
        try await TestGateway.withGateway(serverExtra: budget) { gateway in
            let lines = try await rawRequests(gateway, count: 18, "", wait: 2)
            #expect(lines == Array(repeating: "- closed", count: 10) + Array(repeating: "- open", count: 8), "\(lines)")
            #expect(try await Curl().get("\(gateway.baseURL)/metrics").status == 200)
            let metrics = ownMetrics(gateway)
            #expect(metrics.contains("scrapeguard_connections_rejected_total{reason=\"unauthenticated_per_source\"} 10"),
                    "\(metrics)")
        }
    }
}

/// Files named by the configuration that are not regular files.
@Suite struct SpecialFileTests {
    private static func makeFIFO(in folder: URL) throws -> String {
        let path = folder.appendingPathComponent("fifo-\(UUID().uuidString)").path
        guard mkfifo(path, 0o600) == 0 else { throw CocoaError(.fileWriteUnknown) }
        return path
    }

    /// A FIFO as certificate, key, CA, PII key or either configuration file:
    /// check-config answers at once (it does not wait for a writer), exits 1, and
    /// names the key and what the file is.
    @Test(arguments: ["cert_file", "key_file", "client_ca_file", "pii.hash_key_file", "--config.file", "--web.config.file"])
    func aFIFOIsRefusedAtOnceNamingTheKey(_ key: String) async throws {
        let folder = try makeTemporaryFolder("sg-fifo")
        let fifo = try Self.makeFIFO(in: folder)
        let pki = TestPKI.shared
        var web = TestGateway.defaultWebConfig()
        for (name, file) in [("cert_file", "server.crt"), ("key_file", "server.key"), ("client_ca_file", "ca.crt")] where key == name {
            web = web.replacingOccurrences(of: pki.path(file), with: fifo)
        }
        var gateway = "upstream:\n  url: http://127.0.0.1:8000/metrics\n"
        if key == "pii.hash_key_file" {
            gateway += "pii:\n  hash_key_file: \(fifo)\n  labels:\n    - names: [user]\n      action: hash\n"
        }
        let (_, webFile, configFile) = try writeServeConfig(web: web, gateway: gateway)
        let result = try await ProcessRunner.run([
            Repository.binary, "check-config",
            "--web.config.file=\(key == "--web.config.file" ? fifo : webFile)",
            "--config.file=\(key == "--config.file" ? fifo : configFile)",
        ], timeout: 10)
        #expect(result.status == 1, "check-config must refuse, not hang (124 is coreutils' timeout): \(result.stderr)")
        #expect(result.stderr.contains("is a FIFO, not a regular file"), "\(result.stderr)")
        if !key.hasPrefix("--") {
            #expect(result.stderr.contains(key), "the key is named: \(result.stderr)")
        }
    }

    /// Under serve, a certificate replaced by a FIFO is a failed reload that keeps
    /// the old one; the process still serves, and SIGTERM still ends it.
    @Test func aFIFOOnReloadNeitherHangsNorBlocksShutdown() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let work = try makeTemporaryFolder("sg-fifo-reload")
        let pki = TestPKI.shared
        let key = work.appendingPathComponent("tls.key").path
        try FileManager.default.copyItem(atPath: pki.path("server.key"), toPath: key)
        let (folder, web, config) = try writeServeConfig(
            web: TestGateway.defaultWebConfig().replacingOccurrences(of: pki.path("server.key"), with: key),
            gateway: "upstream:\n  url: http://127.0.0.1:\(upstreamPort)/metrics\n")
        let serve = try await ServeProcess(folder: folder, webConfigFile: web, configFile: config,
                                           extraArguments: ["--reload.interval=200ms", "--web.shutdown-timeout=5s"])
        let fifo = try Self.makeFIFO(in: work)
        #expect(rename(fifo, key) == 0)
        serve.signal(SIGHUP)
        for _ in 0..<100 where !serve.log.contains("is a FIFO") {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(serve.log.contains("reload failed"), "\(serve.log)")
        #expect(serve.log.contains("is a FIFO, not a regular file"), "\(serve.log)")
        #expect(try await Curl().get("\(serve.baseURL)/metrics").status == 200, "the old key still serves")
        serve.signal(SIGTERM)
        #expect(try await serve.waitForExit(timeout: .seconds(8)) == 0, "\(serve.log)")
        await upstream.stop()
    }
}
