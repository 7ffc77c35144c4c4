internal import COpenSSL

/// An error from the TLS layer: what went wrong, in words a log reader can act on,
/// and the OpenSSL error queue entries drained at the time.
package struct TLSError: Error, Sendable, Hashable, CustomStringConvertible {
    package enum Code: String, Sendable, Hashable {
        /// The configuration could not be turned into an OpenSSL context.
        case invalidConfiguration = "invalid_configuration"
        /// A certificate, key or CA could not be read or does not fit.
        case invalidCredentials = "invalid_credentials"
        /// The handshake failed (protocol, cipher, certificate verification).
        case handshakeFailed = "handshake_failed"
        /// The client did not finish its handshake in time.
        case handshakeTimeout = "handshake_timeout"
        /// The peer's certificate verified but none of its SANs is allowed.
        case peerNotAllowed = "peer_not_allowed"
        /// A TLS record error after the handshake.
        case protocolError = "protocol_error"
        /// OpenSSL could not allocate an object.
        case allocationFailed = "allocation_failed"
    }

    /// Which credential an `invalidCredentials` error is about, so configuration
    /// errors can name the key that holds it.
    package enum Credential: String, Sendable, Hashable {
        case certificate
        case privateKey = "private_key"
        case clientCA = "client_ca"
    }

    package var code: Code
    package var message: String
    package var credential: Credential?
    /// The OpenSSL error queue, oldest first (`error:0A000086:SSL routines::...`).
    package var openSSLErrors: [String]

    package init(_ code: Code, _ message: String, credential: Credential? = nil, openSSLErrors: [String] = []) {
        self.code = code
        self.message = message
        self.credential = credential
        self.openSSLErrors = openSSLErrors
    }

    package var description: String {
        if openSSLErrors.isEmpty {
            return "\(code.rawValue): \(message)"
        }
        return "\(code.rawValue): \(message) (\(openSSLErrors.joined(separator: "; ")))"
    }

    /// Builds an error from whatever is on this thread's OpenSSL error queue, emptying it.
    static func drainingQueue(_ code: Code, _ message: String, credential: Credential? = nil) -> TLSError {
        TLSError(code, message, credential: credential, openSSLErrors: OpenSSLErrorQueue.drain())
    }
}

/// The per-thread OpenSSL error queue. Clear it before an SSL call and read it right
/// after, with no suspension point between: another connection on the same thread
/// would otherwise see our errors.
enum OpenSSLErrorQueue {
    static func clear() {
        ERR_clear_error()
    }

    static func drain() -> [String] {
        drainWithReasons().map(\.text)
    }

    /// The queue's entries, oldest first, each with its short reason
    /// (`no shared cipher`) for counters and its full text for logs.
    static func drainWithReasons() -> [(reason: String, text: String)] {
        var entries: [(reason: String, text: String)] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let reason = ERR_reason_error_string(code).map { String(cString: $0) } ?? "unknown"
            entries.append((reason, text))
        }
        return entries
    }
}
