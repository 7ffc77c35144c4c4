import Foundation
import Testing

/// Slow and hostile clients hit a limit and are closed; real scrapes keep working.
/// One test at a time: five hundred handshakes load both cores.
@Suite(.serialized) struct LimitsTests {
    @Test func fiveHundredStalledRequestsDoNotStopARealScrape() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(
            upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics",
            // Budgets for unauthenticated connections as large as the test: it is about
            // the read-header deadline (ConnectionBudgetTests has the default budgets).
            serverExtra: """
              read_header_timeout: 30s
              max_connections: 1000
              max_unauthenticated_connections: 1000
              max_unauthenticated_connections_per_source: 1000
            """)
        let readyFile = gateway.folder.appendingPathComponent("stalled-ready").path
        let arguments = TLSClientScripts.arguments(port: gateway.port) + ["500", readyFile, "60"]
        async let stalled = Task.detached { try await python(TLSClientScripts.stalledRequests, arguments, timeout: 120) }.value
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: readyFile) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(FileManager.default.fileExists(atPath: readyFile))
        #expect(gateway.server.openConnections >= 500)
        let response = try await Curl().get("\(gateway.baseURL)/metrics")
        #expect(response.status == 200, "a real scrape succeeds beside 500 stalled requests")
        #expect(response.bodyText == "up 1\n")
        let result = try await stalled
        #expect(result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "500",
                "every stalled connection is closed by the header timeout: \(result.stdoutText) \(result.stderr)")
        let metrics = try await Curl().get("\(gateway.baseURL)/gateway/metrics")
        #expect(metrics.bodyText.contains("scrapeguard_connections_rejected_total{reason=\"read_header_timeout\"} 500"))
        await gateway.stop()
        await upstream.stop()
    }

    /// At `max_connections`, authenticated connections are never pushed out: with
    /// three kept-alive scrapers holding the three places, a fourth connection is
    /// closed. Three strangers holding them instead make way for a scraper.
    @Test func connectionsBeyondTheLimitAreClosedUnlessAStrangerMakesWay() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(
            upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics", serverExtra: "  max_connections: 3")
        for (round, mode) in ["scrape", "handshake-only"].enumerated() {
            let release = gateway.folder.appendingPathComponent("release-\(round)").path
            let arguments = TLSClientScripts.arguments(port: gateway.port) + ["3", release, mode]
            async let holder = Task.detached { try await python(TLSClientScripts.holdConnections, arguments) }.value
            for _ in 0..<200 where gateway.server.openConnections < 3 {
                try await Task.sleep(for: .milliseconds(20))
            }
            try await Task.sleep(for: .milliseconds(200))  // the holders' scrapes end
            #expect(gateway.server.openConnections == 3)
            let fourth = try await Curl().get("\(gateway.baseURL)/metrics")
            if mode == "scrape" {
                #expect(fourth.status == 0 && fourth.exitCode != 0, "the fourth connection is closed: \(fourth.stderr)")
            } else {
                #expect(fourth.status == 200, "a stranger made way: \(fourth.stderr)")
            }
            _ = FileManager.default.createFile(atPath: release, contents: Data())
            let held = try await holder
            #expect(held.status == 0, "\(held.stderr)")
            for _ in 0..<200 where gateway.server.openConnections > 0 {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        let metrics = try await Curl().get("\(gateway.baseURL)/gateway/metrics")
        // The budgets follow max_connections down to 3: the strangers, all from
        // 127.0.0.1 like curl, fill that source's share, and its oldest makes way.
        #expect(metrics.bodyText.contains("scrapeguard_connections_rejected_total{reason=\"max_connections\"} 1"),
                "the fourth scraper refused: \(metrics.bodyText)")
        #expect(metrics.bodyText.contains("scrapeguard_connections_rejected_total{reason=\"unauthenticated_per_source\"} 1"),
                "one stranger pushed out: \(metrics.bodyText)")
        await gateway.stop()
        await upstream.stop()
    }

    /// An 8 MB body: more than the kernel's socket buffers take for one scraper.
    static let stalledBody = Array((0..<200_000).map { "series_with_a_long_name{label=\"value_\($0)\"} 1\n" }.joined().utf8)

    /// A gateway in front of `stalledBody`, and `count` authenticated scrapers that
    /// ask for it and never read; `body` runs once they are all connected, the
    /// scrapers are let go after it.
    private func withStalledScrapers(_ count: Int, serverExtra: String,
                                     _ body: (TestGateway) async throws -> Void) async throws {
        let upstream = TestUpstream(body: Self.stalledBody)
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(
            upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics", upstreamExtra: "  scrape_timeout: 60s",
            serverExtra: serverExtra)
        let release = gateway.folder.appendingPathComponent("release").path
        let arguments = TLSClientScripts.arguments(port: gateway.port) + ["\(count)", release, "stall"]
        async let holder = Task.detached { try await python(TLSClientScripts.holdConnections, arguments) }.value
        for _ in 0..<500 where gateway.server.openConnections < count {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await body(gateway)
        _ = FileManager.default.createFile(atPath: release, contents: Data())
        _ = try await holder
        for _ in 0..<300 where gateway.server.openConnections > 0 {
            try await Task.sleep(for: .milliseconds(20))
        }
        await gateway.stop()
        await upstream.stop()
    }

    /// Ten authenticated scrapers that never read: each is closed once nothing was
    /// taken for `write_timeout`, long before the scrape timeout, and counted; a real
    /// scrape made meanwhile succeeds.
    @Test func scrapersThatNeverReadAreClosedAtTheWriteTimeout() async throws {
        try await withStalledScrapers(10, serverExtra: "  write_timeout: 2s") { gateway in
            let response = try await Curl().get("\(gateway.baseURL)/metrics")
            #expect(response.status == 200 && response.body.count == Self.stalledBody.count,
                    "a real scrape beside ten stalled ones: \(response.status), \(response.body.count) bytes")
            for _ in 0..<300 where gateway.server.openConnections > 0 {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(gateway.server.openConnections == 0, "every stalled scraper was closed")
            let metrics = String(decoding: gateway.server.metrics.exposition(), as: UTF8.self)
            #expect(metrics.contains("scrapeguard_connections_rejected_total{reason=\"write_timeout\"} 10"), "\(metrics)")
            #expect(metrics.contains("scrapeguard_scrapes_total{result=\"client_aborted\"} 10"), "\(metrics)")
        }
    }

    /// Twenty scrapers that never read, against a 1 MiB `max_buffered_bytes`: the
    /// bytes held for them stay within the budget plus one chunk and its filter's
    /// state each, a new scrape is
    /// either served whole or refused with 503 (as the budget stands at that moment),
    /// and nothing stays counted once they are gone.
    @Test func theBufferBudgetBoundsWhatStalledScrapersHold() async throws {
        var gatewayLeft: TestGateway?
        try await withStalledScrapers(20, serverExtra: "  write_timeout: 60s\n  max_buffered_bytes: 1MiB") { gateway in
            try await Task.sleep(for: .seconds(2))  // whatever was on its way has come
            let held = gateway.server.outbound.bytesInUse
            #expect(held >= 512 << 10, "the stalled scrapers hold bytes: \(held)")
            // Each scrape may pass the budget by the chunk it was filtering when the
            // budget ran out (64 KiB at most: one read a turn), and by what its filter's
            // state grew on that chunk: the duplicate check's table, charged in the
            // budget too, which grows with the series the scrape wrote and may double
            // on that chunk. A doubling adds at most half of the final table, so with
            // every table inside `held`: held <= budget + 20 chunks + held / 2.
            // (Observed about budget + 20 * 85 KiB; without the budget, 20 whole bodies.)
            #expect(held <= 2 * ((1 << 20) + 20 * (64 << 10)),
                    "within the budget plus one chunk and the filter's state's growth a scrape: \(held)")
            // They hold about the budget: a new scrape is served whole while it is not
            // quite spent, and refused with 503 once it is. Either, nothing else.
            let meanwhile = try await Curl().get("\(gateway.baseURL)/metrics")
            let servedWhole = meanwhile.status == 200 && meanwhile.body.count == Self.stalledBody.count
            let refusedBusy = meanwhile.status == 503 && meanwhile.bodyText == "gateway busy\n"
            #expect(servedWhole || refusedBusy, "\(meanwhile.status), \(meanwhile.body.count) bytes")
            gatewayLeft = gateway
        }
        #expect(gatewayLeft?.server.outbound.bytesInUse == 0, "nothing stays counted once they are gone")
    }

    /// A scraper's socket gets `socket_send_buffer` (the kernel doubles it), so a
    /// stalled scraper holds that much kernel memory, not the 4 MiB autotuning allows.
    /// Read from the kernel by `ss`, as an operator would.
    @Test(arguments: [(nil as String?, 128 << 10), ("48KiB", 48 << 10)])
    func scraperSocketsGetTheConfiguredSendBuffer(_ setting: String?, _ bytes: Int) async throws {
        let extra = setting.map { "  write_timeout: 60s\n  socket_send_buffer: \($0)" } ?? "  write_timeout: 60s"
        try await withStalledScrapers(2, serverExtra: extra) { gateway in
            let ss = try await ProcessRunner.run(["ss", "-tmnH", "state", "established", "( sport = :\(gateway.port) )"])
            #expect(ss.status == 0, "\(ss.stderr)")
            let sizes = ss.stdoutText.split(separator: "\n").compactMap { line -> Int? in
                guard let range = line.range(of: #",tb(\d+),"#, options: .regularExpression) else { return nil }
                return Int(line[range].dropFirst(3).dropLast())
            }
            #expect(sizes.count == 2 && sizes.allSatisfy { $0 == 2 * bytes }, "\(ss.stdoutText)")
        }
    }

    @Test func oversizedHeadersAndRequestTargetsAreRefused() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(
            upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics",
            serverExtra: "  max_header_bytes: 8KiB\n  max_request_line: 1KiB")
        let bigHeader = "X-Big: " + String(repeating: "a", count: 10_000)
        let tooLarge = try await Curl().get("\(gateway.baseURL)/metrics", extra: ["-H", bigHeader])
        #expect(tooLarge.status == 431)
        let longTarget = try await Curl().get("\(gateway.baseURL)/metrics?" + String(repeating: "q", count: 2000))
        #expect(longTarget.status == 414)
        #expect(try await Curl().get("\(gateway.baseURL)/metrics").status == 200)
        await gateway.stop()
        await upstream.stop()
    }

    @Test func idleKeepAliveConnectionsAreClosedAfterTheIdleTimeout() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(
            upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics", serverExtra: "  idle_timeout: 1s")
        let result = try await python(TLSClientScripts.idleAfterOneRequest, TLSClientScripts.arguments(port: gateway.port) + ["10"])
        #expect(result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "closed", "\(result.stdoutText) \(result.stderr)")
        let kept = try await TestGateway.start(
            upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics", serverExtra: "  idle_timeout: 30s")
        let open = try await python(TLSClientScripts.idleAfterOneRequest, TLSClientScripts.arguments(port: kept.port) + ["2"])
        #expect(open.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "open", "\(open.stdoutText) \(open.stderr)")
        await gateway.stop()
        await kept.stop()
        await upstream.stop()
    }
}
