import Logging
import NIOCore

/// Sent outbound by the HTTP handler so that `ConnectionLimitsHandler`, which sits
/// below the HTTP codec, knows where a connection is in its request cycle.
enum RequestCycleEvent {
    /// A whole request head arrived: the header-read deadline no longer applies.
    case requestHeadReceived
    /// The response ended and the connection waits for the next request.
    case responseCompleted
}

/// Bounds what a client may do before it has sent a request, between the TLS
/// handler and the HTTP codec (so it counts plaintext bytes):
/// - the request head must arrive within `readHeaderTimeout` of its first byte (or
///   of the connection's start), and be at most `maximumHeaderBytes` long: a client
///   that trickles a header (slowloris) is closed;
/// - a kept-alive connection may wait `idleTimeout` for its next request.
final class ConnectionLimitsHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        /// Reading a request head: bytes count against the header limits.
        case readingHeader(bytes: Int)
        /// A request is being answered.
        case processing
        /// Between requests on a kept-alive connection.
        case idle
    }

    private let readHeaderTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private let maximumHeaderBytes: Int
    private let onLimit: @Sendable (String) -> Void
    private var phase: Phase = .readingHeader(bytes: 0)
    private var timer: Scheduled<Void>?

    init(readHeaderTimeout: TimeAmount, idleTimeout: TimeAmount, maximumHeaderBytes: Int,
         onLimit: @escaping @Sendable (String) -> Void) {
        self.readHeaderTimeout = readHeaderTimeout
        self.idleTimeout = idleTimeout
        self.maximumHeaderBytes = maximumHeaderBytes
        self.onLimit = onLimit
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            arm(readHeaderTimeout, reason: "read_header_timeout", context: context)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        if timer == nil {
            arm(readHeaderTimeout, reason: "read_header_timeout", context: context)
        }
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let count = unwrapInboundIn(data).readableBytes
        switch phase {
        case .idle:
            phase = .readingHeader(bytes: count)
            arm(readHeaderTimeout, reason: "read_header_timeout", context: context)
        case .readingHeader(let bytes):
            phase = .readingHeader(bytes: bytes + count)
        case .processing:
            break  // pipelined requests: the HTTP pipeline holds them
        }
        if case .readingHeader(let bytes) = phase, bytes > maximumHeaderBytes {
            refuseOversizedHeader(context: context)
            return
        }
        context.fireChannelRead(data)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let event = event as? RequestCycleEvent else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch event {
        case .requestHeadReceived:
            phase = .processing
            timer?.cancel()
            timer = nil
        case .responseCompleted:
            phase = .idle
            arm(idleTimeout, reason: "idle_timeout", context: context)
        }
        promise?.succeed(())
    }

    private func arm(_ timeout: TimeAmount, reason: String, context: ChannelHandlerContext) {
        timer?.cancel()
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.timer = nil
            if reason != "idle_timeout" { self.onLimit(reason) }
            context.close(promise: nil)
        }
    }

    /// Answers 431 in plain bytes (the HTTP codec is above this handler) and closes.
    private func refuseOversizedHeader(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        phase = .processing
        onLimit("header_too_large")
        let response = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
