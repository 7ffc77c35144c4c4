/// Sent up the pipeline (as a user inbound event) once a handshake succeeds, before
/// any application data: the HTTP layer reads the peer's identity from it.
public struct TLSHandshakeCompletedEvent: Sendable, Hashable {
    /// The client certificate's identity, when the client sent one.
    public var peer: PeerIdentity?
    /// Whether `peer` verified against the client CA (false when the policy asks for
    /// a certificate without checking it).
    public var peerVerified: Bool
    /// `TLSv1.2` or `TLSv1.3`.
    public var protocolVersion: String
    /// OpenSSL's name of the negotiated cipher.
    public var cipher: String
    /// The negotiated ALPN protocol, if any.
    public var applicationProtocol: String?
    /// Whether the session was resumed rather than fully negotiated.
    public var sessionReused: Bool
}

/// Why a TLS connection ended before it could carry a request: for logs and for the
/// handshake-failure counter, whose `reason` label is `TLSFailure.reason`.
public struct TLSFailure: Sendable, Hashable {
    /// A short, low-cardinality reason: `no shared cipher`, `certificate has expired`,
    /// `peer did not return a certificate`, `client certificate SAN not allowed`,
    /// `handshake timeout`, `not TLS`, ...
    public var reason: String
    public var error: TLSError
}
