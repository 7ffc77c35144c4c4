import GatewayTLS
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
/// handler and the HTTP codec (so it counts plaintext bytes, and sees the first byte
/// of a head, which the codec above only hands on once the head is whole):
/// - the TLS handshake must end within `handshakeTimeout` of the connection's start
///   (it learns of the end from `TLSHandshakeCompletedEvent`);
/// - the request head must arrive within `readHeaderTimeout` of its first byte (or
///   of the connection's start), and be at most `maximumHeaderBytes` long: a client
///   that trickles a header (slowloris) is closed;
/// - a response may wait `writeTimeout` for the scraper to take any of its bytes;
/// - a kept-alive connection may wait `idleTimeout` for its next request.
/// `ConnectionTimingStateMachine` decides; this handler runs the timer and the I/O.
final class ConnectionLimitsHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let handshakeTimeout: TimeAmount
    private let readHeaderTimeout: TimeAmount
    private let writeTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private let onLimit: @Sendable (ConnectionLimit) -> Void
    private var machine: ConnectionTimingStateMachine
    private var timer: Scheduled<Void>?

    init(handshakeTimeout: TimeAmount, readHeaderTimeout: TimeAmount, writeTimeout: TimeAmount, idleTimeout: TimeAmount,
         maximumHeaderBytes: Int, onLimit: @escaping @Sendable (ConnectionLimit) -> Void) {
        self.handshakeTimeout = handshakeTimeout
        self.readHeaderTimeout = readHeaderTimeout
        self.writeTimeout = writeTimeout
        self.idleTimeout = idleTimeout
        self.onLimit = onLimit
        self.machine = ConnectionTimingStateMachine(maximumHeaderBytes: maximumHeaderBytes)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            run(machine.connectionStarted(), context: context)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        if timer == nil {
            run(machine.connectionStarted(), context: context)
        }
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Closed (a 431 sent, a deadline passed): nothing more reaches the codec.
        if case .closed = machine.state { return }
        let action = machine.bytesReceived(unwrapInboundIn(data).readableBytes)
        run(action, context: context)
        if action != .refuseOversizedHead {
            context.fireChannelRead(data)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSHandshakeCompletedEvent {
            run(machine.handshakeCompleted(), context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        run(machine.writabilityChanged(isWritable: context.channel.isWritable), context: context)
        context.fireChannelWritabilityChanged()
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let event = event as? RequestCycleEvent else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch event {
        case .requestHeadReceived: run(machine.requestHeadReceived(), context: context)
        case .responseCompleted: run(machine.responseCompleted(), context: context)
        }
        promise?.succeed(())
    }

    private func run(_ action: ConnectionTimingStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .arm(let deadline):
            timer?.cancel()
            let timeout: TimeAmount
            switch deadline {
            case .handshake: timeout = handshakeTimeout
            case .readHeader: timeout = readHeaderTimeout
            case .writeProgress: timeout = writeTimeout
            case .idle: timeout = idleTimeout
            }
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
                self.timer = nil
                self.run(self.machine.deadlinePassed(deadline), context: context)
            }
        case .cancelDeadline:
            timer?.cancel()
            timer = nil
        case .refuseOversizedHead:
            timer?.cancel()
            timer = nil
            onLimit(.headerTooLarge)
            // In plain bytes: the HTTP codec is above this handler.
            let response = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            // A client that does not read its 431 is closed all the same.
            context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) {
                context.close(promise: nil)
            }
        case .close(let limit):
            if let limit { onLimit(limit) }
            context.close(promise: nil)
        }
    }
}
