import Foundation
import Testing

/// What a hostile or confused client sends on the TLS port never stops the gateway
/// from serving the next good client.
@Suite struct RobustnessTests {
    /// Runs a raw-socket client in Python: `mode` is garbage, plain-http or
    /// half-handshake. Prints what the server sent back and whether it closed.
    static let rawClient = """
        import os, socket, sys, time
        port, mode = int(sys.argv[1]), sys.argv[2]
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(5)
        if mode == "garbage":
            try:
                s.sendall(bytes([0x47]) + os.urandom(4095))
            except ConnectionResetError:
                pass
        elif mode == "plain-http":
            s.sendall(b"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        elif mode == "half-handshake":
            # The first bytes of a TLS 1.2 ClientHello record, then nothing.
            s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]))
        start = time.time()
        received = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                received += chunk
        except socket.timeout:
            print("still-open")
            sys.exit(0)
        except ConnectionResetError:
            pass  # closed with our bytes unread: a reset, not a FIN
        print("closed", len(received), received[:5].hex(), round(time.time() - start, 1))
        """

    private func raw(_ mode: String, port: Int) async throws -> String {
        let result = try await ProcessRunner.run(["python3", "-c", Self.rawClient, "\(port)", mode], timeout: 30)
        #expect(result.status == 0, "\(result.stderr)")
        return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func garbagePlainHTTPAndHalfHandshakesLeaveTheServerServing() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(
            upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics", serverExtra: "  handshake_timeout: 2s")

        // Garbage and plain HTTP are not TLS: the connection is closed at once, and
        // nothing of the request is sent back.
        let garbage = try await raw("garbage", port: gateway.port)
        #expect(garbage.hasPrefix("closed 0"), "\(garbage)")
        let plain = try await raw("plain-http", port: gateway.port)
        #expect(plain.hasPrefix("closed 0"), "\(plain)")

        // A stalled handshake is closed by the handshake timeout; meanwhile a good
        // client is served.
        async let stalled = Task.detached { try await self.raw("half-handshake", port: gateway.port) }.value
        try await Task.sleep(for: .milliseconds(300))
        let response = try await Curl().get("\(gateway.baseURL)/metrics")
        #expect(response.status == 200)
        #expect(response.bodyText == "up 1\n")
        let stalledResult = try await stalled
        #expect(stalledResult.hasPrefix("closed 0"), "a stalled handshake is closed by the timeout: \(stalledResult)")
        #expect(gateway.server.handshakeFailuresByReason["handshake timeout"] == 1)
        #expect(gateway.server.handshakeFailuresByReason["not TLS"] == 2)

        let after = try await Curl().get("\(gateway.baseURL)/metrics")
        #expect(after.status == 200)
        await gateway.stop()
        await upstream.stop()
    }

    @Test func malformedHTTPInsideTLSGets400AndTheNextClientIsServed() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics")
        let pki = TestPKI.shared
        let result = try await ProcessRunner.run([
            "openssl", "s_client", "-quiet", "-connect", "127.0.0.1:\(gateway.port)",
            "-cert", pki.path("client.crt"), "-key", pki.path("client.key"), "-CAfile", pki.path("ca.crt"),
        ], stdin: Data("NOT HTTP AT ALL \u{01}\u{02}\r\n\r\n".utf8))
        #expect(result.stdoutText.hasPrefix("HTTP/1.1 400"), "\(result.stdoutText)")
        #expect(try await Curl().get("\(gateway.baseURL)/metrics").status == 200)
        await gateway.stop()
        await upstream.stop()
    }
}
