import NIOConcurrencyHelpers

/// Bytes held for scrapes in flight, summed over every connection, against
/// `server.max_buffered_bytes`: body bytes written toward scrapers that the socket has
/// not taken yet, and each scrape's filter state (its duplicate-check table grows
/// with the series written). What a crowd of scrapers that read slowly (or not at
/// all) could otherwise make the gateway hold.
///
/// While it is spent, a scrape that still has bytes waiting stops reading from the
/// app until its own bytes are taken, and a new scrape is answered 503. A scrape
/// with nothing waiting may always write its next chunk, so every scrape makes
/// progress without a timer: the total stays within the budget plus one chunk per
/// scrape in flight (a chunk is at most one 64 KiB read from the app, filtered).
package final class OutboundBudget: Sendable {
    private struct State {
        var limit: Int
        var used = 0
    }

    private let state: NIOLockedValueBox<State>

    package init(limit: Int) {
        state = NIOLockedValueBox(State(limit: limit))
    }

    /// A reload may change the limit; bytes already counted stay counted.
    func setLimit(_ limit: Int) {
        state.withLockedValue { $0.limit = limit }
    }

    var isSpent: Bool { state.withLockedValue { $0.used >= $0.limit } }
    package var bytesInUse: Int { state.withLockedValue { $0.used } }

    func reserve(_ bytes: Int) {
        state.withLockedValue { $0.used += bytes }
    }

    func release(_ bytes: Int) {
        state.withLockedValue { $0.used -= bytes }
    }
}
