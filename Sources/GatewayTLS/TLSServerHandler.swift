import Logging
import NIOCore

/// Terminates TLS on a server channel: ciphertext from the socket goes into a
/// `TLSConnection`, the ciphertext it produces goes out on the channel, and plaintext
/// flows in and out of the handler as `ByteBuffer`s. OpenSSL itself is
/// `TLSConnection`'s; this handler holds only the NIO side.
///
/// It never shuts down after a fatal error, answers a peer's close_notify with its
/// own, and closes by sending close_notify, flushing it, and closing once the write
/// is done (or after `closeTimeout`). How long a handshake may take is not decided
/// here: `ConnectionLimitsHandler` above times every state of the connection, and
/// learns the handshake ended from `TLSHandshakeCompletedEvent`.
package final class TLSServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer
    package typealias OutboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer

    /// Called on the event loop for every connection that fails before or during
    /// the handshake, or with a TLS error later.
    package typealias FailureObserver = @Sendable (TLSFailure) -> Void

    private enum State {
        /// Nothing received yet: the first byte must open a handshake record.
        case awaitingClientHello(TLSConnection)
        case handshaking(TLSConnection)
        case active(TLSConnection)
        /// close_notify is on its way; `promise` completes when the channel closes.
        case closing(TLSConnection, promise: EventLoopPromise<Void>?)
        case closed
    }

    private let tlsContext: TLSContext
    private let closeTimeout: TimeAmount
    private let logger: Logger
    private let onFailure: FailureObserver?
    private var state: State = .closed

    /// - Parameters:
    ///   - context: the TLS context current when the connection was accepted.
    ///   - closeTimeout: how long a close waits for its close_notify to be written.
    package init(
        context: TLSContext,
        closeTimeout: TimeAmount = .seconds(1),
        logger: Logger = Logger(label: "scrapeguard.tls"),
        onFailure: FailureObserver? = nil
    ) {
        self.tlsContext = context
        self.closeTimeout = closeTimeout
        self.logger = logger
        self.onFailure = onFailure
    }

    // MARK: - Lifecycle

    package func handlerAdded(context: ChannelHandlerContext) {
        do {
            state = .awaitingClientHello(try TLSConnection(server: tlsContext))
        } catch {
            state = .closed
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        state = .closed  // releases the connection, and OpenSSL's SSL with it
    }

    package func channelInactive(context: ChannelHandlerContext) {
        let previous = state
        if case .closing = previous {
            // `finishClose` still owes the close promise its answer.
        } else {
            state = .closed
        }
        switch previous {
        case .handshaking:
            report(TLSFailure(reason: "connection closed during handshake",
                              error: TLSError(.handshakeFailed, "the client closed the connection during the handshake")))
        case .active:
            // EOF without close_notify: an unclean close, common and harmless for
            // HTTP/1.1 where the response framing says where the body ends.
            logger.debug("TLS connection closed without close_notify")
        case .awaitingClientHello, .closing, .closed:
            break
        }
        context.fireChannelInactive()
    }

    // MARK: - Inbound

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let connection: TLSConnection
        switch state {
        case .awaitingClientHello(let waiting):
            guard let first = buffer.readableBytesView.first else { return }
            guard first == 0x16 else {
                // A TLS connection starts with a handshake record (0x16): anything
                // else, such as a plain HTTP request, is refused at once.
                fail(context: context, TLSFailure(reason: "not TLS",
                                                  error: TLSError(.handshakeFailed, "the client did not start a TLS handshake")))
                return
            }
            state = .handshaking(waiting)
            connection = waiting
        case .handshaking(let current), .active(let current):
            connection = current
        case .closing, .closed:
            return
        }
        buffer.withUnsafeReadableBytes { connection.feed($0) }
        if case .handshaking = state {
            continueHandshake(connection, context: context)
        }
        if case .active = state {
            readPlaintext(connection, context: context)
        }
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        if case .active = state {
            context.fireChannelReadComplete()
        }
    }

    // MARK: - Outbound

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch state {
        case .active(let connection):
            encryptAndWrite(connection, unwrapOutboundIn(data), context: context, promise: promise)
        case .awaitingClientHello, .handshaking:
            // Nothing above writes before a request, and no request arrives before
            // the handshake ends.
            promise?.fail(TLSError(.protocolError, "a write before the TLS handshake finished"))
        case .closing, .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    package func flush(context: ChannelHandlerContext) {
        switch state {
        case .active, .closing:
            context.flush()
        case .awaitingClientHello, .handshaking, .closed:
            break
        }
    }

    package func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode != .input else {
            context.close(mode: mode, promise: promise)
            return
        }
        switch state {
        case .active(let connection):
            state = .closing(connection, promise: promise)
            connection.shutdown()
            sendCloseNotifyThenClose(connection, context: context)
        case .closing(let connection, let closePromise):
            if let promise {
                if let closePromise {
                    closePromise.futureResult.cascade(to: promise)
                } else {
                    state = .closing(connection, promise: promise)
                }
            }
        case .awaitingClientHello, .handshaking, .closed:
            state = .closed
            context.close(mode: .all, promise: promise)
        }
    }

    // MARK: - Running the connection

    private func continueHandshake(_ connection: TLSConnection, context: ChannelHandlerContext) {
        let result = connection.handshake()
        // The handshake's next flight, or the alert of a failure: worth sending either way.
        writeCiphertext(connection, context: context, promise: nil)
        context.flush()
        switch result {
        case .incomplete:
            break
        case .complete(let event):
            state = .active(connection)
            context.fireUserInboundEventTriggered(event)
        case .failed(let failure):
            fail(context: context, failure)
        }
    }

    private func readPlaintext(_ connection: TLSConnection, context: ChannelHandlerContext) {
        readLoop: while case .active = state {
            var buffer = context.channel.allocator.buffer(capacity: 16384)
            var result = TLSConnection.ReadResult.incomplete
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16384) { pointer in
                result = connection.read(into: pointer)
                if case .bytes(let count) = result { return count }
                return 0
            }
            switch result {
            case .bytes:
                context.fireChannelRead(wrapInboundOut(buffer))
            case .incomplete:
                break readLoop
            case .closedByPeer:
                // The client sent close_notify: answer with ours and close (through
                // this handler's own close, which sends it).
                logger.debug("TLS close_notify received")
                close(context: context, mode: .all, promise: nil)
                break readLoop
            case .failed(let failure):
                fail(context: context, failure)
                return
            }
        }
        // Post-handshake messages (key updates, tickets) OpenSSL wrote meanwhile.
        if case .active = state, connection.pendingCiphertext > 0 {
            writeCiphertext(connection, context: context, promise: nil)
            context.flush()
        }
    }

    private func encryptAndWrite(_ connection: TLSConnection, _ plaintext: ByteBuffer, context: ChannelHandlerContext,
                                 promise: EventLoopPromise<Void>?) {
        if plaintext.readableBytes == 0 {
            context.write(wrapOutboundOut(plaintext), promise: promise)
            return
        }
        switch plaintext.withUnsafeReadableBytes({ connection.write($0) }) {
        case .complete:
            writeCiphertext(connection, context: context, promise: promise)
        case .failed(let failure):
            promise?.fail(failure.error)
            fail(context: context, failure)
        }
    }

    /// Moves all the ciphertext the connection produced onto the channel.
    private func writeCiphertext(_ connection: TLSConnection, context: ChannelHandlerContext,
                                 promise: EventLoopPromise<Void>?) {
        let pending = connection.pendingCiphertext
        guard pending > 0 else {
            if let promise {
                context.write(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
            }
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: pending)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { connection.takeCiphertext(into: $0) }
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    private func sendCloseNotifyThenClose(_ connection: TLSConnection, context: ChannelHandlerContext) {
        let written = context.eventLoop.makePromise(of: Void.self)
        writeCiphertext(connection, context: context, promise: written)
        context.flush()
        let timeout = context.eventLoop.scheduleTask(in: closeTimeout) {
            written.fail(ChannelError.alreadyClosed)
        }
        written.futureResult.assumeIsolated().whenComplete { _ in
            timeout.cancel()
            self.finishClose(context: context)
        }
    }

    private func finishClose(context: ChannelHandlerContext) {
        var promise: EventLoopPromise<Void>?
        if case .closing(_, let closePromise) = state {
            promise = closePromise
        }
        state = .closed
        context.close(mode: .all, promise: promise)
    }

    private func fail(context: ChannelHandlerContext, _ failure: TLSFailure) {
        if case .closed = state { return }
        state = .closed
        report(failure)
        context.close(promise: nil)
    }

    private func report(_ failure: TLSFailure) {
        logger.info("TLS connection failed", metadata: ["reason": "\(failure.reason)", "error": "\(failure.error)"])
        onFailure?(failure)
    }
}
