/// A limit that closed (or refused) a client connection: the `reason` label of
/// `scrapeguard_connections_rejected_total`.
enum ConnectionLimit: String, Sendable {
    /// `max_connections` were open already.
    case maxConnections = "max_connections"
    /// The request head did not arrive within `read_header_timeout`.
    case readHeaderTimeout = "read_header_timeout"
    /// The request head was over `max_header_bytes` (answered 431).
    case headerTooLarge = "header_too_large"
}
