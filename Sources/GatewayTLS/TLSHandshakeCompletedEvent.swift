/// Sent up the pipeline (as a user inbound event) once a handshake succeeds, before
/// any application data: the HTTP layer reads the peer's identity from it.
package struct TLSHandshakeCompletedEvent: Sendable, Hashable {
    /// The client certificate's identity, when the client sent one.
    package var peer: PeerIdentity?
    /// Whether `peer` verified against the client CA (false when the policy asks for
    /// a certificate without checking it).
    package var peerVerified: Bool
    /// `TLSv1.2` or `TLSv1.3`.
    package var protocolVersion: String
    /// OpenSSL's name of the negotiated cipher.
    package var cipher: String
    /// The negotiated ALPN protocol, if any.
    package var applicationProtocol: String?
    /// Whether the session was resumed rather than fully negotiated.
    package var sessionReused: Bool

    package init(peer: PeerIdentity?, peerVerified: Bool, protocolVersion: String, cipher: String,
                 applicationProtocol: String?, sessionReused: Bool) {
        self.peer = peer
        self.peerVerified = peerVerified
        self.protocolVersion = protocolVersion
        self.cipher = cipher
        self.applicationProtocol = applicationProtocol
        self.sessionReused = sessionReused
    }
}

/// Why a TLS connection ended before it could carry a request: for logs and for the
/// handshake-failure counter, whose `reason` label is `TLSFailure.reason`.
package struct TLSFailure: Sendable, Hashable {
    /// A short, low-cardinality reason: `no shared cipher`, `certificate has expired`,
    /// `peer did not return a certificate`, `client certificate SAN not allowed`,
    /// `handshake timeout`, `not TLS`, ...
    package var reason: String
    package var error: TLSError

    package init(reason: String, error: TLSError) {
        self.reason = reason
        self.error = error
    }
}
