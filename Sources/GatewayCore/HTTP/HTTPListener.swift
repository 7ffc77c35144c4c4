import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A listening socket and the pipeline each accepted connection gets: the one way the
/// gateway, its health port and the demo app listen. It binds once and closes once;
/// what runs on the accepted connections is the caller's `childInitializer`.
package final class HTTPListener: Sendable {
    package struct Options: Sendable {
        package var backlog: Int32 = 256
        /// Scrape responses are written in full chunks: Nagle would only delay the last.
        package var noDelay = true
        /// Reads per event-loop turn for one connection, so one busy client cannot
        /// hold a loop.
        package var maximumMessagesPerRead: UInt = 4

        package init() {}
    }

    private enum State {
        case idle
        case listening(Channel)
        case closed
    }

    private let group: EventLoopGroup
    private let state = NIOLockedValueBox(State.idle)

    package init(group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.group = group
    }

    /// Binds `host:port` (port 0 picks one) and starts accepting; returns the bound
    /// address. A listener binds once: after `close()` it stays closed.
    package func bind(host: String, port: Int, options: Options = Options(),
                      childInitializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) async throws -> SocketAddress {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: options.backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: options.noDelay ? 1 : 0)
            .childChannelOption(.maxMessagesPerRead, value: options.maximumMessagesPerRead)
            .childChannelInitializer(childInitializer)
            .bind(host: host, port: port)
            .get()
        let accepted = state.withLockedValue { state -> Bool in
            guard case .idle = state else { return false }
            state = .listening(channel)
            return true
        }
        guard accepted else {
            try? await channel.close()
            throw ChannelError.alreadyClosed
        }
        return channel.localAddress!
    }

    /// Stops accepting. Connections already accepted are not touched.
    package func close() async {
        let channel = state.withLockedValue { state -> Channel? in
            defer { state = .closed }
            if case .listening(let channel) = state { return channel }
            return nil
        }
        try? await channel?.close()
    }
}
