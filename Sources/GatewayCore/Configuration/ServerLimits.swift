/// Limits against slow and hostile clients: the `server:` keys of scrapeguard.yml.
package struct ServerLimits: Sendable, Hashable {
    /// Connections open at once. When full, a newcomer takes the place of the oldest
    /// unauthenticated connection, or is refused when every open one is authenticated.
    package var maximumConnections: Int = 512
    /// Connections that have not yet passed admission (still in the handshake, or
    /// before their first request's credentials): a budget of their own, so strangers
    /// cannot take `maximumConnections`. When full, the oldest of them is closed.
    package var maximumUnauthenticatedConnections: Int = 64
    /// One source address's share of `maximumUnauthenticatedConnections`; past it,
    /// that source's oldest unauthenticated connection is closed.
    package var maximumUnauthenticatedPerSource: Int = 16
    /// From connecting to a finished TLS handshake.
    package var handshakeTimeout: Duration = .seconds(10)
    /// From the first byte of a request (or the connection's start) to its whole head.
    package var readHeaderTimeout: Duration = .seconds(10)
    /// How long a response may wait for the scraper to take any of its bytes (the
    /// channel staying unwritable) before the connection is closed: a scraper that
    /// stops reading holds its scrape's memory no longer than this. Prometheus reads
    /// as fast as the gateway writes; 10 s is its default scrape timeout.
    package var writeTimeout: Duration = .seconds(10)
    /// How long a kept-alive connection may wait for its next request. Prometheus
    /// scrapes every 15–60 s on one connection: keep this above the scrape interval.
    package var idleTimeout: Duration = .seconds(120)
    /// Bytes written toward scrapers and not yet taken by the socket, summed over
    /// every connection (`OutboundBudget`). 32 MiB: deploy/'s limit is 128 MiB, the
    /// idle process about 36 MiB, and each scrape in flight holds its filter state
    /// beside its buffered bytes; this leaves half the limit for those.
    package var maximumBufferedBytes: Int = 32 << 20
    /// The kernel's send buffer for each scraper's socket (`SO_SNDBUF`; Linux doubles
    /// it for its own bookkeeping). Left to autotuning, a socket whose reader stalls
    /// can hold 4 MiB (`tcp_wmem`'s maximum): memory charged to the pod's cgroup but
    /// in no RSS figure, and scrape state that grows with every series the kernel
    /// took. 128 KiB still carries a scrape at full speed on a pod network (its
    /// bandwidth times its round trip is well under it). 0 leaves it to the kernel.
    package var socketSendBuffer: Int = 128 << 10
    /// The request head, request line included.
    package var maximumHeaderBytes: Int = 16 << 10
    /// The request line's target (path and query).
    package var maximumRequestLine: Int = 4 << 10

    package init() {}

    var admission: ConnectionAdmission.Limits {
        ConnectionAdmission.Limits(maximumConnections: maximumConnections,
                                   maximumUnproven: maximumUnauthenticatedConnections,
                                   maximumUnprovenPerSource: maximumUnauthenticatedPerSource)
    }

    mutating func read(from section: inout YAMLConfigReader) throws {
        if let value = try section.int("max_connections") {
            guard value >= 1 else { throw section.error(.invalidValue, "max_connections", "must be at least 1") }
            maximumConnections = value
        }
        // Unset, the budgets follow a lowered max_connections down; set, they must fit.
        let budget = try section.int("max_unauthenticated_connections")
        let share = try section.int("max_unauthenticated_connections_per_source")
        maximumUnauthenticatedConnections = min(budget ?? maximumUnauthenticatedConnections, maximumConnections)
        maximumUnauthenticatedPerSource = min(share ?? maximumUnauthenticatedPerSource, maximumUnauthenticatedConnections)
        if let budget {
            guard budget >= 1, budget <= maximumConnections else {
                throw section.error(.invalidValue, "max_unauthenticated_connections",
                                    "must be between 1 and max_connections (\(maximumConnections))")
            }
        }
        if let share {
            guard share >= 1, share <= maximumUnauthenticatedConnections else {
                throw section.error(.invalidValue, "max_unauthenticated_connections_per_source",
                                    "must be between 1 and max_unauthenticated_connections (\(maximumUnauthenticatedConnections))")
            }
        }
        for (key, path) in [("handshake_timeout", \ServerLimits.handshakeTimeout),
                            ("read_header_timeout", \ServerLimits.readHeaderTimeout),
                            ("write_timeout", \ServerLimits.writeTimeout),
                            ("idle_timeout", \ServerLimits.idleTimeout)] {
            if let value = try section.duration(key) {
                guard value > .zero else { throw section.error(.invalidValue, key, "must be greater than 0") }
                self[keyPath: path] = value
            }
        }
        if let value = try section.byteSize("max_buffered_bytes") {
            guard value >= 1 << 20 else { throw section.error(.invalidValue, "max_buffered_bytes", "must be at least 1MiB") }
            maximumBufferedBytes = value
        }
        if let value = try section.byteSize("socket_send_buffer") {
            guard value == 0 || (4 << 10 ... 64 << 20).contains(value) else {
                throw section.error(.invalidValue, "socket_send_buffer", "must be 0 (the kernel's autotuning) or between 4KiB and 64MiB")
            }
            socketSendBuffer = value
        }
        if let value = try section.byteSize("max_header_bytes") {
            guard value >= 1024 else { throw section.error(.invalidValue, "max_header_bytes", "must be at least 1KiB") }
            maximumHeaderBytes = value
        }
        if let value = try section.byteSize("max_request_line") {
            guard value >= 64 else { throw section.error(.invalidValue, "max_request_line", "must be at least 64 bytes") }
            maximumRequestLine = value
        }
    }
}
