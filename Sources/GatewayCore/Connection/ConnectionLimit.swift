/// A limit that closed (or refused) a client connection: the `reason` label of
/// `scrapeguard_connections_rejected_total`.
enum ConnectionLimit: String, Sendable {
    /// The TLS handshake did not finish within `handshake_timeout`. Counted with the
    /// other handshake failures (`scrapeguard_tls_handshake_failures_total`, reason
    /// `handshake timeout`), where an operator looks for TLS trouble.
    case handshakeTimeout = "handshake_timeout"
    /// `max_connections` were open already.
    case maxConnections = "max_connections"
    /// The request head did not arrive within `read_header_timeout`.
    case readHeaderTimeout = "read_header_timeout"
    /// The request head was over `max_header_bytes` (answered 431).
    case headerTooLarge = "header_too_large"
}
