@testable import GatewayCore
import GatewayTLS
import NIOCore
import NIOEmbedded
import Testing

/// The connection's deadlines in memory: the state machine table by table, and the
/// handler on an `EmbeddedChannel` whose event loop's clock the test moves by hand.
@Suite struct ConnectionTimingTests {
    enum Event: Sendable {
        case started
        case handshook
        case bytes(Int)
        case head
        case responded
        case writable(Bool)
        case deadline(ConnectionTimingStateMachine.Deadline)
    }

    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var awaitsHandshake = false
        var events: [Event]
        var action: ConnectionTimingStateMachine.Action
        var state: ConnectionTimingStateMachine.State
        var testDescription: String { name }
    }

    static let rows: [Row] = [
        .init(name: "a TLS connection first waits for its handshake", awaitsHandshake: true, events: [.started],
              action: .arm(.handshake), state: .handshaking),
        .init(name: "the handshake ends: the read-header deadline", awaitsHandshake: true,
              events: [.started, .handshook], action: .arm(.readHeader), state: .readingHead(bytes: 0)),
        .init(name: "a handshake that does not end is closed and counted", awaitsHandshake: true,
              events: [.started, .deadline(.handshake)], action: .close(limit: .handshakeTimeout), state: .closed),
        .init(name: "a stale handshake deadline does nothing", awaitsHandshake: true,
              events: [.started, .handshook, .deadline(.handshake)], action: .none, state: .readingHead(bytes: 0)),
        .init(name: "a second handshake event does nothing", awaitsHandshake: true,
              events: [.started, .handshook, .bytes(4), .handshook], action: .none, state: .readingHead(bytes: 4)),
        .init(name: "a new connection waits for a head", events: [.started], action: .arm(.readHeader),
              state: .readingHead(bytes: 0)),
        .init(name: "head bytes are counted", events: [.started, .bytes(10), .bytes(20)], action: .none,
              state: .readingHead(bytes: 30)),
        .init(name: "exactly the limit is allowed", events: [.started, .bytes(100)], action: .none,
              state: .readingHead(bytes: 100)),
        .init(name: "one byte over the limit: 431", events: [.started, .bytes(60), .bytes(41)],
              action: .refuseOversizedHead, state: .closed),
        .init(name: "the head arrives: no deadline while answering", events: [.started, .bytes(50), .head],
              action: .cancelDeadline, state: .processing),
        .init(name: "pipelined bytes while answering are not head bytes", events: [.started, .head, .bytes(500)],
              action: .none, state: .processing),
        .init(name: "the response ends: the idle deadline", events: [.started, .head, .responded], action: .arm(.idle),
              state: .idle),
        .init(name: "the next request's first byte: the read-header deadline again",
              events: [.started, .head, .responded, .bytes(7)], action: .arm(.readHeader), state: .readingHead(bytes: 7)),
        .init(name: "the next request's head counts from zero",
              events: [.started, .bytes(90), .head, .responded, .bytes(101)], action: .refuseOversizedHead, state: .closed),
        .init(name: "a scraper that stops reading: the write-progress deadline",
              events: [.started, .head, .writable(false)], action: .arm(.writeProgress), state: .processing),
        .init(name: "it reads again: no deadline", events: [.started, .head, .writable(false), .writable(true)],
              action: .cancelDeadline, state: .processing),
        .init(name: "it never reads again: closed and counted",
              events: [.started, .head, .writable(false), .deadline(.writeProgress)],
              action: .close(limit: .writeTimeout), state: .closed),
        .init(name: "a stale write deadline after it read again does nothing",
              events: [.started, .head, .writable(false), .writable(true), .deadline(.writeProgress)],
              action: .none, state: .processing),
        .init(name: "a response left untaken after it ended: the write deadline",
              events: [.started, .head, .responded, .writable(false)], action: .arm(.writeProgress),
              state: .idle),
        .init(name: "a stall that began while answering keeps its deadline after the end",
              events: [.started, .head, .writable(false), .responded], action: .none, state: .idle),
        .init(name: "an idle stalled connection closed at the write deadline",
              events: [.started, .head, .writable(false), .responded, .deadline(.writeProgress)],
              action: .close(limit: .writeTimeout), state: .closed),
        .init(name: "a new request does not lift a stall's write deadline",
              events: [.started, .head, .writable(false), .responded, .bytes(5), .head], action: .none,
              state: .processing),
        .init(name: "so a client that never reads is still closed at it",
              events: [.started, .head, .writable(false), .responded, .bytes(5), .head, .responded,
                       .deadline(.writeProgress)],
              action: .close(limit: .writeTimeout), state: .closed),
        .init(name: "a stalled client's slow head is not a read-header timeout",
              events: [.started, .head, .writable(false), .responded, .bytes(5), .deadline(.readHeader)],
              action: .none, state: .readingHead(bytes: 5)),
        .init(name: "a pipelined head handed over at the response's end: no idle deadline",
              events: [.started, .head, .responded, .head], action: .cancelDeadline, state: .processing),
        .init(name: "taken at last: the idle deadline again",
              events: [.started, .head, .writable(false), .responded, .writable(true)], action: .arm(.idle),
              state: .idle),
        .init(name: "a slow head is closed and counted", events: [.started, .bytes(5), .deadline(.readHeader)],
              action: .close(limit: .readHeaderTimeout), state: .closed),
        .init(name: "an idle connection is closed, not counted", events: [.started, .head, .responded, .deadline(.idle)],
              action: .close(limit: nil), state: .closed),
        .init(name: "a deadline that no longer applies does nothing",
              events: [.started, .head, .deadline(.readHeader)], action: .none, state: .processing),
        .init(name: "a stale idle deadline after a new head does nothing",
              events: [.started, .head, .responded, .bytes(3), .deadline(.idle)], action: .none, state: .readingHead(bytes: 3)),
    ]

    @Test(arguments: rows)
    func transition(_ row: Row) {
        var machine = ConnectionTimingStateMachine(maximumHeaderBytes: 100, awaitsHandshake: row.awaitsHandshake)
        var action = ConnectionTimingStateMachine.Action.none
        for event in row.events {
            switch event {
            case .started: action = machine.connectionStarted()
            case .handshook: action = machine.handshakeCompleted()
            case .bytes(let count): action = machine.bytesReceived(count)
            case .head: action = machine.requestHeadReceived()
            case .responded: action = machine.responseCompleted()
            case .writable(let writable): action = machine.writabilityChanged(isWritable: writable)
            case .deadline(let deadline): action = machine.deadlinePassed(deadline)
            }
        }
        #expect(action == row.action)
        #expect(machine.state == row.state)
    }

    /// A client that trickles its head is closed when the read-header deadline passes,
    /// not a moment before, and the limit is counted.
    @Test func aTricklingHeadIsClosedAtItsDeadline() throws {
        let limits = LimitLog()
        let channel = try Self.channel(limits)
        try channel.writeInbound(ByteBuffer(string: "GET /metrics HTTP/1.1\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        try channel.writeInbound(ByteBuffer(string: "Host: x\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
        #expect(limits.reasons == ["read_header_timeout"])
    }

    /// While a request is answered no deadline of this handler runs; afterwards the
    /// idle one does, and closes without counting a limit.
    @Test func answeringHasNoDeadlineAndIdleEndsQuietly() throws {
        let limits = LimitLog()
        let channel = try Self.channel(limits)
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"))
        channel.pipeline.syncOperations.triggerUserOutboundEvent(RequestCycleEvent.requestHeadReceived, promise: nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(600))
        #expect(channel.isActive)
        channel.pipeline.syncOperations.triggerUserOutboundEvent(RequestCycleEvent.responseCompleted, promise: nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(119))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
        #expect(limits.reasons.isEmpty)
    }

    /// A head over the limit gets 431 in plain bytes, is not passed on, and closes.
    @Test func anOversizedHeadIsRefused() throws {
        let limits = LimitLog()
        let channel = try Self.channel(limits)
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 200)))
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil, "nothing reaches the codec")
        let answer = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(String(buffer: answer).hasPrefix("HTTP/1.1 431 "))
        #expect(!channel.isActive)
        #expect(limits.reasons == ["header_too_large"])
    }

    /// A client that never finishes its handshake is closed at the handshake deadline;
    /// one that does gets the read-header deadline, counted from the handshake's end.
    @Test func theHandshakeHasADeadlineOfItsOwn() throws {
        let stalled = LimitLog()
        let stalledChannel = try Self.channel(stalled, handshakeDone: false)
        stalledChannel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(stalledChannel.isActive)
        stalledChannel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!stalledChannel.isActive)
        #expect(stalled.reasons == ["handshake_timeout"])

        let limits = LimitLog()
        let channel = try Self.channel(limits, handshakeDone: false)
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        channel.pipeline.fireUserInboundEventTriggered(Self.handshakeCompleted)
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive, "the head deadline runs from the handshake's end")
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
        #expect(limits.reasons == ["read_header_timeout"])
    }

    /// A scraper that stops taking the response is closed once the write-progress
    /// deadline passes with the channel still unwritable; one that reads again is not.
    @Test func aScraperThatStopsReadingIsClosedAtTheWriteDeadline() throws {
        let limits = LimitLog()
        let channel = try Self.channel(limits)
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        channel.pipeline.syncOperations.triggerUserOutboundEvent(RequestCycleEvent.requestHeadReceived, promise: nil)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(channel.isActive, "it read again in time")
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(!channel.isActive)
        #expect(limits.reasons == ["write_timeout"])
    }

    static let handshakeCompleted = TLSHandshakeCompletedEvent(
        peer: nil, peerVerified: false, protocolVersion: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256",
        applicationProtocol: nil, sessionReused: false)

    static func channel(_ limits: LimitLog, handshakeDone: Bool = true) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ConnectionLimitsHandler(
            handshakeTimeout: .seconds(5), readHeaderTimeout: .seconds(10), writeTimeout: .seconds(10), idleTimeout: .seconds(120),
            maximumHeaderBytes: 128, onLimit: { limits.record($0) }))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9443)).wait()
        if handshakeDone {
            channel.pipeline.fireUserInboundEventTriggered(handshakeCompleted)
        }
        return channel
    }
}

/// The limits a handler reported.
final class LimitLog: @unchecked Sendable {
    // @unchecked: written and read on the embedded loop's (the test's) thread only.
    private(set) var reasons: [String] = []

    func record(_ limit: ConnectionLimit) {
        reasons.append(limit.rawValue)
    }
}
