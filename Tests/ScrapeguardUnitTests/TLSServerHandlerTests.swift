import GatewayTLS
import NIOCore
import NIOEmbedded
import Testing

/// `TLSServerHandler` on an `EmbeddedChannel`, with a client `TLSConnection` at the
/// other end of the wire: the NIO side of TLS (events, reads, writes, close) in memory.
@Suite struct TLSServerHandlerTests {
    /// The handshake ends in one event carrying the peer; plaintext goes both ways;
    /// closing sends close_notify, which the client reads as the end.
    @Test func handshakeReadWriteAndClose() throws {
        let wire = try HandlerWire(client: "client")
        #expect(try wire.handshake())
        let event = try #require(wire.recorder.events.first)
        #expect(wire.recorder.events.count == 1)
        #expect(event.peer?.uris == [TLSConnectionTests.allowedSAN])
        #expect(event.peerVerified)

        let request = Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        #expect(request.withUnsafeBytes { wire.client.write($0) } == .complete)
        try wire.clientToServer()
        #expect(wire.recorder.plaintext == request)

        let answer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        try wire.channel.writeAndFlush(answer).wait()
        try wire.serverToClient()
        #expect(wire.clientReads() == (Array(answer.readableBytesView), .incomplete))

        _ = wire.channel.close()
        try wire.serverToClient()
        #expect(wire.clientReads() == ([], .closedByPeer))
        #expect(!wire.channel.isActive)
        #expect(wire.failures.reasons.isEmpty)
    }

    /// A client's close_notify is answered with the server's own, then the close.
    @Test func aPeersCloseNotifyIsAnswered() throws {
        let wire = try HandlerWire(client: "client")
        #expect(try wire.handshake())
        wire.client.shutdown()
        try wire.clientToServer()
        try wire.serverToClient()
        #expect(wire.clientReads() == ([], .closedByPeer), "the server's close_notify came back")
        #expect(!wire.channel.isActive)
        #expect(wire.failures.reasons.isEmpty)
    }

    /// A plain HTTP request on the TLS port is refused at its first byte and counted.
    @Test func plainHTTPIsNotTLS() throws {
        let wire = try HandlerWire(client: "client")
        try wire.channel.writeInbound(ByteBuffer(string: "GET /metrics HTTP/1.1\r\n\r\n"))
        #expect(!wire.channel.isActive)
        #expect(wire.failures.reasons == ["not TLS"])
        #expect(wire.recorder.plaintext.isEmpty)
    }

    /// A refused client gets the alert and a closed channel; nothing reaches the
    /// handlers above.
    @Test func aRefusedClientIsClosedAndCounted() throws {
        let wire = try HandlerWire(client: "client-wrong-san")
        #expect(try !wire.handshake())
        #expect(!wire.channel.isActive)
        #expect(wire.failures.reasons == ["client certificate SAN not allowed"])
        #expect(wire.recorder.events.isEmpty)
        guard case .failed(let failure) = wire.clientReads().end else {
            Issue.record("the client read no alert")
            return
        }
        #expect(failure.reason.hasSuffix("alert bad certificate"))
    }

    /// A client that hangs up mid-handshake is counted; one that connects and sends
    /// nothing is not (a port check, a load balancer's probe).
    @Test func closesDuringAndBeforeTheHandshake() throws {
        let midway = try HandlerWire(client: "client")
        _ = midway.client.handshake()
        try midway.clientToServer()
        midway.channel.pipeline.fireChannelInactive()  // the peer's FIN, as the socket reports it
        #expect(midway.failures.reasons == ["connection closed during handshake"])

        let silent = try HandlerWire(client: "client")
        silent.channel.pipeline.fireChannelInactive()
        #expect(silent.failures.reasons.isEmpty)
    }
}

/// An `EmbeddedChannel` with a `TLSServerHandler` (test PKI) and a recorder above
/// it, and a client `TLSConnection` whose ciphertext the test carries by hand.
struct HandlerWire {
    let channel: EmbeddedChannel
    let client: TLSConnection
    let recorder = PlaintextRecorder()
    let failures = FailureLog()

    init(client certificate: String?) throws {
        client = try TLSPair.makeClient(certificate)
        channel = EmbeddedChannel()
        let failures = self.failures
        try channel.pipeline.syncOperations.addHandler(TLSServerHandler(
            context: TLSPair.serverContext(), onFailure: { failures.record($0) }))
        try channel.pipeline.syncOperations.addHandler(recorder)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9443)).wait()
    }

    /// Runs the handshake to its end; true when the server side completed.
    func handshake() throws -> Bool {
        for _ in 0..<10 {
            _ = client.handshake()
            try clientToServer()
            try serverToClient()
            if !recorder.events.isEmpty || !channel.isActive { break }
        }
        return !recorder.events.isEmpty
    }

    func clientToServer() throws {
        try channel.writeInbound(ByteBuffer(bytes: client.takeAllCiphertext()))
    }

    func serverToClient() throws {
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            buffer.withUnsafeReadableBytes { client.feed($0) }
        }
    }

    func clientReads() -> (bytes: [UInt8], end: TLSConnection.ReadResult) {
        client.readAll()
    }
}

/// What the TLS handler passed up: handshake events and plaintext.
final class PlaintextRecorder: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used on the embedded loop's (the test's) thread only.
    typealias InboundIn = ByteBuffer
    private(set) var events: [TLSHandshakeCompletedEvent] = []
    private(set) var plaintext: [UInt8] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        plaintext += Array(unwrapInboundIn(data).readableBytesView)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSHandshakeCompletedEvent {
            events.append(event)
        }
    }
}

/// The failures a TLS handler reported.
final class FailureLog: @unchecked Sendable {
    // @unchecked: written and read on the embedded loop's (the test's) thread only.
    private(set) var reasons: [String] = []

    func record(_ failure: TLSFailure) {
        reasons.append(failure.reason)
    }
}
