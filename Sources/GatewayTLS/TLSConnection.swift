internal import COpenSSL
internal import COpenSSLShims

/// One TLS session with no I/O of its own: OpenSSL's `SSL` between two memory BIOs.
/// The owner feeds it the ciphertext that arrived, steps it (handshake, read, write,
/// shutdown) and takes the ciphertext it produced, to send however it likes: a NIO
/// channel (`TLSServerHandler`), or another `TLSConnection` in a test.
///
/// Every step clears the thread's OpenSSL error queue before its call and drains it
/// right after, with nothing between: another connection on the same thread never
/// reads this one's errors. What a failed handshake means (the verify result, the
/// refused SAN, the first queued reason) is read here and nowhere else.
///
/// Not thread-safe: one connection, one thread (an event loop, or a test).
package final class TLSConnection {
    package enum HandshakeResult {
        /// OpenSSL wants more ciphertext from the peer (send what it produced first).
        case incomplete
        case complete(TLSHandshakeCompletedEvent)
        /// Fatal: send the alert OpenSSL produced, then close. No shutdown after this.
        case failed(TLSFailure)
    }

    package enum ReadResult: Equatable {
        /// This many plaintext bytes were written into the buffer.
        case bytes(Int)
        /// No whole record yet: feed more ciphertext.
        case incomplete
        /// The peer sent close_notify.
        case closedByPeer
        case failed(TLSFailure)
    }

    package enum WriteResult: Equatable {
        /// All of the plaintext is now ciphertext, ready to take.
        case complete
        case failed(TLSFailure)
    }

    private let ssl: OpaquePointer
    /// Owned by `ssl` (`SSL_set_bio`): freed with it.
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    /// Whether a presented peer certificate was checked against a CA, so that
    /// `peerVerified` can say so.
    private let verifiesPeer: Bool
    /// The `TLSContext` or `TLSClientContext` this connection was made from, kept
    /// alive with it: OpenSSL keeps the `SSL_CTX` alive, but the verify callback also
    /// reads the Swift object its ex-data points at (the allowed SANs).
    private let context: AnyObject

    /// The server end of a connection accepted under `context`.
    package convenience init(server context: TLSContext) throws(TLSError) {
        try self.init(sslContext: context.context, owner: context, isServer: true,
                      verifiesPeer: context.configuration.clientAuth.verifiesCertificate)
    }

    /// The client end, for holding a server to a real handshake in memory.
    package convenience init(client context: TLSClientContext) throws(TLSError) {
        try self.init(sslContext: context.context, owner: context, isServer: false, verifiesPeer: true)
    }

    private init(sslContext: OpaquePointer, owner: AnyObject, isServer: Bool, verifiesPeer: Bool) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(sslContext) else {
            throw TLSError.drainingQueue(.allocationFailed, "SSL_new failed")
        }
        guard let readBIO = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError.drainingQueue(.allocationFailed, "BIO_new failed")
        }
        guard let writeBIO = BIO_new(BIO_s_mem()) else {
            BIO_free(readBIO)
            SSL_free(ssl)
            throw TLSError.drainingQueue(.allocationFailed, "BIO_new failed")
        }
        // An empty read BIO means "want more", not end of file.
        sg_BIO_set_mem_eof_return(readBIO, -1)
        SSL_set_bio(ssl, readBIO, writeBIO)
        if isServer {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
        }
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        self.verifiesPeer = verifiesPeer
        self.context = owner
    }

    deinit {
        SSL_free(ssl)
    }

    // MARK: - Ciphertext in and out

    /// Hands OpenSSL ciphertext that arrived from the peer. A memory BIO grows to take
    /// all of it.
    package func feed(_ ciphertext: UnsafeRawBufferPointer) {
        guard let base = ciphertext.baseAddress else { return }
        var offset = 0
        while offset < ciphertext.count {
            let written = BIO_write(readBIO, base + offset, Int32(min(ciphertext.count - offset, Int(Int32.max))))
            guard written > 0 else { return }
            offset += Int(written)
        }
    }

    /// How many ciphertext bytes wait to be sent to the peer.
    package var pendingCiphertext: Int {
        Int(BIO_ctrl_pending(writeBIO))
    }

    /// Moves up to `buffer.count` bytes of pending ciphertext into `buffer`; returns
    /// how many.
    package func takeCiphertext(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return 0 }
        let read = BIO_read(writeBIO, base, Int32(min(buffer.count, Int(Int32.max))))
        return max(Int(read), 0)
    }

    // MARK: - Steps

    /// Runs the handshake as far as the ciphertext fed so far allows.
    package func handshake() -> HandshakeResult {
        OpenSSLErrorQueue.clear()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            let event = completedEvent()
            OpenSSLErrorQueue.clear()  // reading the peer's certificate may have queued some
            return .complete(event)
        }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .incomplete
        default:
            return .failed(handshakeFailure(OpenSSLErrorQueue.drainWithReasons()))
        }
    }

    /// Decrypts into `buffer` as much as one record (or what is left of it) holds.
    package func read(into buffer: UnsafeMutableRawBufferPointer) -> ReadResult {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return .incomplete }
        OpenSSLErrorQueue.clear()
        let result = SSL_read(ssl, base, Int32(min(buffer.count, Int(Int32.max))))
        if result > 0 {
            return .bytes(Int(result))
        }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .incomplete
        case SSL_ERROR_ZERO_RETURN:
            return .closedByPeer
        default:
            // After the handshake, a verify failure can still surface here: TLS 1.3
            // clients learn of a refused certificate from the server's first record.
            return .failed(handshakeOrRecordFailure(OpenSSLErrorQueue.drainWithReasons()))
        }
    }

    /// Encrypts all of `plaintext` (an empty buffer writes nothing).
    package func write(_ plaintext: UnsafeRawBufferPointer) -> WriteResult {
        guard let base = plaintext.baseAddress else { return .complete }
        var offset = 0
        while offset < plaintext.count {
            OpenSSLErrorQueue.clear()
            let written = SSL_write(ssl, base + offset, Int32(min(plaintext.count - offset, 1 << 30)))
            guard written > 0 else {
                let entries = OpenSSLErrorQueue.drainWithReasons()
                let reason = entries.first?.reason ?? "write failed"
                return .failed(TLSFailure(reason: reason,
                                          error: TLSError(.protocolError, reason, openSSLErrors: entries.map(\.text))))
            }
            offset += Int(written)
        }
        return .complete
    }

    /// Queues a close_notify. Never call it after a failed step: a fatal error
    /// ends the session without one.
    package func shutdown() {
        OpenSSLErrorQueue.clear()
        _ = SSL_shutdown(ssl)
        OpenSSLErrorQueue.clear()
    }

    // MARK: - Reading OpenSSL's state

    private func handshakeFailure(_ entries: [(reason: String, text: String)]) -> TLSFailure {
        let verifyResult = SSL_get_verify_result(ssl)
        let reason: String
        let code: TLSError.Code
        if SSL_get_ex_data(ssl, TLSContext.sanRefusedIndex) != nil {
            reason = "client certificate SAN not allowed"
            code = .peerNotAllowed
        } else if verifyResult != Int(X509_V_OK) {
            reason = String(cString: X509_verify_cert_error_string(verifyResult))
            code = .handshakeFailed
        } else {
            reason = entries.first?.reason ?? "handshake failed"
            code = .handshakeFailed
        }
        return TLSFailure(reason: reason, error: TLSError(code, reason, openSSLErrors: entries.map(\.text)))
    }

    private func handshakeOrRecordFailure(_ entries: [(reason: String, text: String)]) -> TLSFailure {
        guard SSL_is_init_finished(ssl) == 1 else { return handshakeFailure(entries) }
        let reason = entries.first?.reason ?? "record error"
        return TLSFailure(reason: reason, error: TLSError(.protocolError, reason, openSSLErrors: entries.map(\.text)))
    }

    private func completedEvent() -> TLSHandshakeCompletedEvent {
        var peer: PeerIdentity?
        if let certificate = SSL_get1_peer_certificate(ssl) {
            peer = PeerIdentity(certificate: certificate)
            X509_free(certificate)
        }
        let verified = peer != nil && verifiesPeer && SSL_get_verify_result(ssl) == Int(X509_V_OK)
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
}
