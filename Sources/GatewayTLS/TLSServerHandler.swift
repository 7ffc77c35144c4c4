internal import COpenSSL
internal import COpenSSLShims
import Logging
import NIOCore

/// Terminates TLS on a server channel with OpenSSL, through a pair of memory BIOs:
/// ciphertext from the socket is written into the read BIO, OpenSSL's output is
/// drained from the write BIO into the channel. Plaintext flows in and out of the
/// handler as `ByteBuffer`s.
///
/// Long (about 450 lines) because it still drives OpenSSL itself; the issue "state
/// machines and snapshots" moves that into a NIO-free `TLSConnection`.
///
/// The handler owns one `SSL` for one connection, on one event loop. It never calls
/// `SSL_shutdown` after a fatal error, answers a peer's close_notify with its own,
/// and closes by sending close_notify, flushing it, and closing once the write is
/// done (or after `closeTimeout`).
public final class TLSServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// Called on the event loop for every connection that fails before or during
    /// the handshake, or with a TLS error later.
    public typealias FailureObserver = @Sendable (TLSFailure) -> Void

    private enum State {
        case handshaking
        case active
        case closing
        case closed
    }

    private let tlsContext: TLSContext
    private let handshakeTimeout: TimeAmount
    private let closeTimeout: TimeAmount
    private let logger: Logger
    private let onFailure: FailureObserver?

    private var ssl: OpaquePointer?
    private var readBIO: OpaquePointer?
    private var writeBIO: OpaquePointer?
    private var state: State = .handshaking
    private var handshakeTimer: Scheduled<Void>?
    private var writesBeforeHandshake: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var flushBeforeHandshake = false
    private var closePromise: EventLoopPromise<Void>?
    private var receivedBytes = false

    /// - Parameters:
    ///   - context: the TLS context current when the connection was accepted.
    ///   - handshakeTimeout: how long a client has from connecting to finishing its
    ///     handshake.
    ///   - closeTimeout: how long a close waits for its close_notify to be written.
    public init(
        context: TLSContext,
        handshakeTimeout: TimeAmount = .seconds(10),
        closeTimeout: TimeAmount = .seconds(1),
        logger: Logger = Logger(label: "scrapeguard.tls"),
        onFailure: FailureObserver? = nil
    ) {
        self.tlsContext = context
        self.handshakeTimeout = handshakeTimeout
        self.closeTimeout = closeTimeout
        self.logger = logger
        self.onFailure = onFailure
    }

    // MARK: - Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        do {
            let ssl = try tlsContext.makeConnection()
            guard let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem()) else {
                SSL_free(ssl)
                throw TLSError.drainingQueue(.allocationFailed, "BIO_new failed")
            }
            // An empty read BIO means "want more", not EOF.
            sg_BIO_set_mem_eof_return(readBIO, -1)
            SSL_set_bio(ssl, readBIO, writeBIO)
            SSL_set_accept_state(ssl)
            self.ssl = ssl
            self.readBIO = readBIO
            self.writeBIO = writeBIO
        } catch {
            state = .closed
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        if context.channel.isActive {
            startHandshakeTimer(context: context)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        handshakeTimer = nil
        if let ssl {
            SSL_free(ssl)  // frees both BIOs too
        }
        ssl = nil
        readBIO = nil
        writeBIO = nil
        failWritesBeforeHandshake(ChannelError.ioOnClosedChannel)
    }

    public func channelActive(context: ChannelHandlerContext) {
        startHandshakeTimer(context: context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        let previous = state
        state = .closed
        handshakeTimer?.cancel()
        handshakeTimer = nil
        failWritesBeforeHandshake(ChannelError.ioOnClosedChannel)
        switch previous {
        case .handshaking:
            if receivedBytes {
                report(TLSFailure(reason: "connection closed during handshake",
                                  error: TLSError(.handshakeFailed, "the client closed the connection during the handshake")))
            }
        case .active:
            // EOF without close_notify: an unclean close, common and harmless for
            // HTTP/1.1 where the response framing says where the body ends.
            logger.debug("TLS connection closed without close_notify")
        case .closing, .closed:
            break
        }
        context.fireChannelInactive()
    }

    // MARK: - Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard state == .handshaking || state == .active, let readBIO else { return }
        if !receivedBytes, state == .handshaking, let first = buffer.readableBytesView.first, first != 0x16 {
            // A TLS connection starts with a handshake record (0x16): anything else,
            // such as a plain HTTP request, is refused at once.
            fail(context: context, TLSFailure(reason: "not TLS", error: TLSError(.handshakeFailed, "the client did not start a TLS handshake")))
            return
        }
        receivedBytes = true
        buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = BIO_write(readBIO, bytes.baseAddress! + offset, Int32(min(bytes.count - offset, Int(Int32.max))))
                guard written > 0 else { break }
                offset += Int(written)
            }
        }
        if state == .handshaking {
            continueHandshake(context: context)
        }
        if state == .active {
            readPlaintext(context: context)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if state == .active {
            context.fireChannelReadComplete()
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.fireErrorCaught(error)
    }

    // MARK: - Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        switch state {
        case .handshaking:
            writesBeforeHandshake.append((buffer, promise))
        case .active:
            encryptAndWrite(context: context, buffer, promise: promise)
        case .closing, .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    public func flush(context: ChannelHandlerContext) {
        switch state {
        case .handshaking:
            flushBeforeHandshake = true
        case .active, .closing:
            context.flush()
        case .closed:
            break
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode != .input else {
            context.close(mode: mode, promise: promise)
            return
        }
        switch state {
        case .active:
            state = .closing
            closePromise = promise
            sendCloseNotifyThenClose(context: context)
        case .closing:
            if let promise {
                if let closePromise {
                    closePromise.futureResult.cascade(to: promise)
                } else {
                    closePromise = promise
                }
            }
        case .handshaking, .closed:
            state = .closed
            context.close(mode: .all, promise: promise)
        }
    }

    // MARK: - OpenSSL driving

    private func continueHandshake(context: ChannelHandlerContext) {
        guard let ssl else { return }
        OpenSSLErrorQueue.clear()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            state = .active
            handshakeTimer?.cancel()
            handshakeTimer = nil
            writeNetworkOutput(context: context, promise: nil)
            context.flush()
            context.fireUserInboundEventTriggered(completedEvent(ssl))
            releaseWritesBeforeHandshake(context: context)
            return
        }
        let error = SSL_get_error(ssl, result)
        switch error {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            writeNetworkOutput(context: context, promise: nil)
            context.flush()
        default:
            let entries = OpenSSLErrorQueue.drainWithReasons()
            let verifyResult = SSL_get_verify_result(ssl)
            let reason: String
            let code: TLSError.Code
            if TLSContext.refusedSANs(ssl) {
                reason = "client certificate SAN not allowed"
                code = .peerNotAllowed
            } else if verifyResult != Int(X509_V_OK) {
                reason = String(cString: X509_verify_cert_error_string(verifyResult))
                code = .handshakeFailed
            } else {
                reason = entries.first?.reason ?? "handshake failed"
                code = .handshakeFailed
            }
            // The alert OpenSSL queued is still worth sending; no SSL_shutdown after
            // a fatal error.
            writeNetworkOutput(context: context, promise: nil)
            context.flush()
            fail(context: context, TLSFailure(reason: reason, error: TLSError(code, reason, openSSLErrors: entries.map(\.text))))
        }
    }

    private func readPlaintext(context: ChannelHandlerContext) {
        guard let ssl else { return }
        readLoop: while state == .active {
            var buffer = context.channel.allocator.buffer(capacity: 16384)
            var result: Int32 = 0
            var sslError: Int32 = SSL_ERROR_NONE
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16384) { pointer in
                OpenSSLErrorQueue.clear()
                result = SSL_read(ssl, pointer.baseAddress, Int32(min(pointer.count, Int(Int32.max))))
                if result <= 0 { sslError = SSL_get_error(ssl, result) }
                return result > 0 ? Int(result) : 0
            }
            if result > 0 {
                context.fireChannelRead(wrapInboundOut(buffer))
                continue
            }
            switch sslError {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                break readLoop
            case SSL_ERROR_ZERO_RETURN:
                // The client sent close_notify: answer with ours and close.
                logger.debug("TLS close_notify received")
                context.close(promise: nil)
                break readLoop
            default:
                let entries = OpenSSLErrorQueue.drainWithReasons()
                let reason = entries.first?.reason ?? "record error"
                fail(context: context, TLSFailure(reason: reason, error: TLSError(.protocolError, reason, openSSLErrors: entries.map(\.text))))
                return
            }
        }
        // Post-handshake messages (key updates, tickets) OpenSSL wrote meanwhile.
        if state == .active, let writeBIO, BIO_ctrl_pending(writeBIO) > 0 {
            writeNetworkOutput(context: context, promise: nil)
            context.flush()
        }
    }

    private func encryptAndWrite(context: ChannelHandlerContext, _ plaintext: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard let ssl else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        if plaintext.readableBytes == 0 {
            context.write(wrapOutboundOut(plaintext), promise: promise)
            return
        }
        var failure: TLSFailure?
        plaintext.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                OpenSSLErrorQueue.clear()
                let chunk = Int32(min(bytes.count - offset, 1 << 30))
                let written = SSL_write(ssl, bytes.baseAddress! + offset, chunk)
                if written > 0 {
                    offset += Int(written)
                    continue
                }
                let entries = OpenSSLErrorQueue.drainWithReasons()
                let reason = entries.first?.reason ?? "write failed"
                failure = TLSFailure(reason: reason, error: TLSError(.protocolError, reason, openSSLErrors: entries.map(\.text)))
                return
            }
        }
        if let failure {
            promise?.fail(failure.error)
            fail(context: context, failure)
            return
        }
        writeNetworkOutput(context: context, promise: promise)
    }

    /// Moves everything OpenSSL wrote into the write BIO onto the channel.
    private func writeNetworkOutput(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard let writeBIO else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let pending = Int(BIO_ctrl_pending(writeBIO))
        guard pending > 0 else {
            if let promise {
                context.write(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
            }
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: pending)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { pointer in
            let read = BIO_read(writeBIO, pointer.baseAddress, Int32(pending))
            return max(Int(read), 0)
        }
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    private func sendCloseNotifyThenClose(context: ChannelHandlerContext) {
        guard let ssl else {
            finishClose(context: context)
            return
        }
        OpenSSLErrorQueue.clear()
        _ = SSL_shutdown(ssl)
        OpenSSLErrorQueue.clear()
        let written = context.eventLoop.makePromise(of: Void.self)
        writeNetworkOutput(context: context, promise: written)
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
        let promise = closePromise
        closePromise = nil
        state = .closed
        context.close(mode: .all, promise: promise)
    }

    // MARK: - Helpers

    private func completedEvent(_ ssl: OpaquePointer) -> TLSHandshakeCompletedEvent {
        var peer: PeerIdentity?
        if let certificate = SSL_get1_peer_certificate(ssl) {
            peer = PeerIdentity(certificate: certificate)
            X509_free(certificate)
        }
        let verified = peer != nil && tlsContext.configuration.clientAuth.verifiesCertificate
            && SSL_get_verify_result(ssl) == Int(X509_V_OK)
        var alpnData: UnsafePointer<UInt8>?
        var alpnLength: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &alpnData, &alpnLength)
        let alpn = alpnData.map { String(decoding: UnsafeBufferPointer(start: $0, count: Int(alpnLength)), as: UTF8.self) }
        return TLSHandshakeCompletedEvent(
            peer: peer,
            peerVerified: verified,
            protocolVersion: String(cString: SSL_get_version(ssl)),
            cipher: SSL_get_current_cipher(ssl).map { String(cString: SSL_CIPHER_get_name($0)) } ?? "",
            applicationProtocol: (alpn?.isEmpty ?? true) ? nil : alpn,
            sessionReused: SSL_session_reused(ssl) == 1
        )
    }

    private func startHandshakeTimer(context: ChannelHandlerContext) {
        guard handshakeTimer == nil, state == .handshaking else { return }
        handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: handshakeTimeout) {
            guard self.state == .handshaking else { return }
            self.fail(context: context, TLSFailure(reason: "handshake timeout", error: TLSError(.handshakeTimeout, "the client did not finish its handshake in time")))
        }
    }

    private func releaseWritesBeforeHandshake(context: ChannelHandlerContext) {
        let writes = writesBeforeHandshake
        writesBeforeHandshake = []
        for (buffer, promise) in writes {
            encryptAndWrite(context: context, buffer, promise: promise)
        }
        if flushBeforeHandshake {
            flushBeforeHandshake = false
            context.flush()
        }
    }

    private func failWritesBeforeHandshake(_ error: Error) {
        let writes = writesBeforeHandshake
        writesBeforeHandshake = []
        for (_, promise) in writes {
            promise?.fail(error)
        }
    }

    private func fail(context: ChannelHandlerContext, _ failure: TLSFailure) {
        guard state != .closed else { return }
        state = .closed
        handshakeTimer?.cancel()
        handshakeTimer = nil
        report(failure)
        failWritesBeforeHandshake(failure.error)
        context.close(promise: nil)
    }

    private func report(_ failure: TLSFailure) {
        logger.info("TLS connection failed", metadata: ["reason": "\(failure.reason)", "error": "\(failure.error)"])
        onFailure?(failure)
    }
}
