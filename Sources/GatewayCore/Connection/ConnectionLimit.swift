/// A limit that closed (or refused) a client connection: the `reason` label of
/// `scrapeguard_connections_rejected_total`.
enum ConnectionLimit: String, Sendable {
    /// The TLS handshake did not finish within `handshake_timeout`. Counted with the
    /// other handshake failures (`scrapeguard_tls_handshake_failures_total`, reason
    /// `handshake timeout`), where an operator looks for TLS trouble.
    case handshakeTimeout = "handshake_timeout"
    /// `max_connections` were open already: the newcomer is refused when every open
    /// connection is proven, else the oldest unproven one is closed for it.
    case maxConnections = "max_connections"
    /// `max_unauthenticated_connections` were open already: the oldest was closed.
    case unprovenBudget = "unauthenticated_budget"
    /// The source address held its share of unauthenticated connections: its oldest
    /// was closed.
    case unprovenPerSource = "unauthenticated_per_source"
    /// The server is draining and admits no one.
    case draining
    /// The request head did not arrive within `read_header_timeout`.
    case readHeaderTimeout = "read_header_timeout"
    /// The scraper took no bytes of a response for `write_timeout`.
    case writeTimeout = "write_timeout"
    /// The request head was over `max_header_bytes` (answered 431).
    case headerTooLarge = "header_too_large"
}
