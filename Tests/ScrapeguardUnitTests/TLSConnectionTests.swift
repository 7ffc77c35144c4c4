import Foundation
import GatewayTLS
import Testing
import TestSupport

/// TLS between two in-memory `TLSConnection`s: the gateway's server end against a
/// client end, real OpenSSL on both, no socket. Each refusal is checked from both
/// sides: the reason the server counts and the alert the client reads (what curl
/// shows a user in the integration suite's `AccessTests`). The PKI is made by
/// certs/gen-dev-certs.sh once per run (`TestPKI`): no key lives in the repository.
@Suite struct TLSConnectionTests {
    static let allowedSAN = "spiffe://cluster.local/ns/monitoring/sa/prometheus"

    @Test(arguments: [TLSProtocolVersion.tls12, .tls13])
    func aGoodClientCompletesAndIsIdentified(_ version: TLSProtocolVersion) throws {
        var pair = try TLSPair(client: "client", maximumVersion: version)
        let outcome = pair.handshake()
        let event = try #require(outcome.serverEvent, "\(outcome)")
        #expect(event.protocolVersion == (version == .tls12 ? "TLSv1.2" : "TLSv1.3"))
        #expect(event.peerVerified)
        #expect(event.peer?.uris == [Self.allowedSAN])
        #expect(event.peer?.commonName == "prometheus")
        #expect(event.applicationProtocol == "http/1.1")
        #expect(outcome.clientEvent?.peer?.dnsNames == ["localhost"])
    }

    @Test func plaintextCrossesBothWaysAndCloseNotifyEndsIt() throws {
        var pair = try TLSPair(client: "client")
        #expect(pair.handshake().serverEvent != nil)

        let request = Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        #expect(request.withUnsafeBytes { pair.client.write($0) } == .complete)
        pair.move(from: pair.client, to: pair.server)
        #expect(pair.readAll(pair.server) == (request, .incomplete))

        let body = Array(repeating: UInt8(ascii: "x"), count: 100_000)  // several records
        #expect(body.withUnsafeBytes { pair.server.write($0) } == .complete)
        pair.move(from: pair.server, to: pair.client)
        #expect(pair.readAll(pair.client) == (body, .incomplete))

        pair.client.shutdown()
        pair.move(from: pair.client, to: pair.server)
        #expect(pair.readAll(pair.server) == ([], .closedByPeer))
    }

    /// The refusals `AccessTests.certificateRefusals` checks through curl and a socket.
    /// TLS 1.2 has no `certificate_required` alert: a missing certificate is a
    /// `handshake_failure` there.
    @Test(arguments: [
        ("no client certificate", nil as String?, "peer did not return a certificate", TLSError.Code.handshakeFailed,
         "alert certificate required|alert handshake failure"),
        ("certificate from another CA", "client-other-ca", "unable to get local issuer certificate", .handshakeFailed,
         "alert unknown ca"),
        ("SAN not in client_allowed_sans", "client-wrong-san", "client certificate SAN not allowed", .peerNotAllowed,
         "alert bad certificate"),
        ("expired certificate", "client-expired", "certificate has expired", .handshakeFailed,
         "alert certificate expired"),
    ])
    func refusals(_ name: String, _ certificate: String?, _ reason: String, _ code: TLSError.Code, _ alert: String) throws {
        for version in [TLSProtocolVersion.tls12, .tls13] {
            var pair = try TLSPair(client: certificate, maximumVersion: version)
            let outcome = pair.handshake()
            #expect(outcome.serverFailure?.reason == reason, "\(name), \(version): \(outcome)")
            #expect(outcome.serverFailure?.error.code == code, "\(name), \(version)")
            let alerts = alert.split(separator: "|").map(String.init)
            let expected = version == .tls12 ? alerts.last! : alerts.first!
            #expect(outcome.clientFailure?.reason.hasSuffix(expected) == true, "\(name), \(version): \(outcome)")
        }
    }

    /// A pattern in place of the exact SAN: the Prometheus certificate of any
    /// namespace passes (`ns/*`), the intruder's (`sa/intruder`) is refused as a SAN
    /// refusal, with the alert an exact list gives.
    @Test func sanPatternsAllowAndRefuseInTheHandshake() throws {
        let context = try TLSPair.serverContext(sans: [], patterns: [SANPattern("spiffe://cluster.local/ns/*/sa/prometheus")])
        var allowed = try TLSPair(server: context, client: "client")
        #expect(allowed.handshake().serverEvent?.peer?.uris == [Self.allowedSAN])
        var refused = try TLSPair(server: context, client: "client-wrong-san")
        let outcome = refused.handshake()
        #expect(outcome.serverFailure?.reason == "client certificate SAN not allowed", "\(outcome)")
        #expect(outcome.clientFailure?.reason.hasSuffix("alert bad certificate") == true, "\(outcome)")
    }

    /// The server's first flight answers a ClientHello; bytes that are no TLS at all
    /// fail the handshake with OpenSSL's reason, never as a success.
    @Test func garbageFailsTheHandshake() throws {
        let pair = try TLSPair(client: "client")
        let garbage = Array("\u{16}\u{03}\u{01}\u{00}\u{05}hello".utf8)
        garbage.withUnsafeBytes { pair.server.feed($0) }
        guard case .failed(let failure) = pair.server.handshake() else {
            Issue.record("garbage did not fail the handshake")
            return
        }
        #expect(failure.error.code == .handshakeFailed)
        #expect(!failure.reason.isEmpty)
    }
}

/// A server `TLSConnection` made from the test PKI (`TestPKI`, made per run) (mTLS that requires the
/// Prometheus SAN, as deploy/ does) and a client one, with the wire between them.
struct TLSPair {
    let server: TLSConnection
    let client: TLSConnection

    struct Outcome: CustomStringConvertible {
        var serverEvent: TLSHandshakeCompletedEvent?
        var serverFailure: TLSFailure?
        var clientEvent: TLSHandshakeCompletedEvent?
        var clientFailure: TLSFailure?
        var description: String {
            "server: \(serverEvent.map { "\($0)" } ?? serverFailure.map { "\($0.reason)" } ?? "incomplete"); "
                + "client: \(clientEvent.map { "\($0)" } ?? clientFailure.map { "\($0.reason)" } ?? "incomplete")"
        }
    }

    static func fixture(_ name: String) throws -> String {
        try TestPKI.shared.text(name)
    }

    static func serverContext(sans: [String] = [TLSConnectionTests.allowedSAN], patterns: [SANPattern] = [])
        throws -> TLSContext
    {
        try TLSContext(configuration: TLSConfiguration(
            certificateChain: .inline(pem: fixture("server.crt")), privateKey: .inline(pem: fixture("server.key")),
            clientCA: .inline(pem: fixture("ca.crt")), clientAuth: .requireAndVerifyClientCert,
            clientAllowedSANs: sans, clientAllowedSANPatterns: patterns))
    }

    /// - Parameter client: the base name of the client's certificate in the fixtures,
    ///   or nil for none.
    init(server: TLSContext? = nil, client certificate: String?, maximumVersion: TLSProtocolVersion = .tls13) throws {
        self.server = try TLSConnection(server: server ?? Self.serverContext())
        self.client = try Self.makeClient(certificate, maximumVersion: maximumVersion)
    }

    /// A client end that trusts the fixture CA and presents `certificate` (a base name
    /// in the fixtures), or no certificate.
    static func makeClient(_ certificate: String?, maximumVersion: TLSProtocolVersion = .tls13) throws -> TLSConnection {
        let context = try TLSClientContext(
            trustedCA: fixture("ca.crt"),
            certificate: try certificate.map { (try fixture("\($0).crt"), try fixture("\($0).key")) },
            maximumVersion: maximumVersion)
        return try TLSConnection(client: context)
    }

    /// Steps both ends and carries their flights across until each has completed or
    /// failed. A client that completed while the server refused it (TLS 1.3 sends
    /// the client's certificate in its last flight) learns of it from its next read.
    mutating func handshake() -> Outcome {
        var outcome = Outcome()
        for _ in 0..<10 {
            if outcome.clientEvent == nil && outcome.clientFailure == nil {
                switch client.handshake() {
                case .incomplete: break
                case .complete(let event): outcome.clientEvent = event
                case .failed(let failure): outcome.clientFailure = failure
                }
            }
            move(from: client, to: server)
            if outcome.serverEvent == nil && outcome.serverFailure == nil {
                switch server.handshake() {
                case .incomplete: break
                case .complete(let event): outcome.serverEvent = event
                case .failed(let failure): outcome.serverFailure = failure
                }
            }
            move(from: server, to: client)
            let clientDone = outcome.clientEvent != nil || outcome.clientFailure != nil
            let serverDone = outcome.serverEvent != nil || outcome.serverFailure != nil
            if clientDone && serverDone { break }
        }
        if outcome.serverFailure != nil, outcome.clientEvent != nil, case .failed(let failure) = readAll(client).end {
            outcome.clientFailure = failure
        }
        return outcome
    }

    /// Carries every pending ciphertext byte of `from` into `to`.
    func move(from: TLSConnection, to: TLSConnection) {
        from.takeAllCiphertext().withUnsafeBytes { to.feed($0) }
    }

    func readAll(_ connection: TLSConnection) -> (bytes: [UInt8], end: TLSConnection.ReadResult) {
        connection.readAll()
    }
}

extension TLSConnection {
    /// All the ciphertext waiting to be sent.
    func takeAllCiphertext() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: pendingCiphertext)
        let count = bytes.withUnsafeMutableBytes { takeCiphertext(into: $0) }
        return Array(bytes[..<count])
    }

    /// Reads plaintext until no whole record is left; returns the bytes and how the
    /// reading ended.
    func readAll() -> (bytes: [UInt8], end: ReadResult) {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let result = buffer.withUnsafeMutableBytes { read(into: $0) }
            guard case .bytes(let count) = result else { return (bytes, result) }
            bytes += buffer[..<count]
        }
    }
}
