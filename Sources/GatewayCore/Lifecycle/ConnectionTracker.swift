import NIOConcurrencyHelpers
import NIOCore

/// The open client connections of a server: for the connection limit, and for a
/// drain that closes idle keep-alive connections at once and lets in-flight scrapes
/// finish (NIO's HTTP pipeline does both when it sees `ChannelShouldQuiesceEvent`).
final class ConnectionTracker: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: Channel] = [:]
        var draining = false
    }

    private let state = NIOLockedValueBox(State())

    var count: Int { state.withLockedValue { $0.channels.count } }

    /// Registers a new connection; false when at `limit` or draining.
    func add(_ channel: Channel, limit: Int) -> Bool {
        let added = state.withLockedValue { state -> Bool in
            guard !state.draining, state.channels.count < limit else { return false }
            state.channels[ObjectIdentifier(channel)] = channel
            return true
        }
        if added {
            channel.closeFuture.whenComplete { [weak self] _ in
                self?.state.withLockedValue { _ = $0.channels.removeValue(forKey: ObjectIdentifier(channel)) }
            }
        }
        return added
    }

    /// Stops admitting connections and asks every open one to finish what it is doing
    /// and close.
    func quiesceAll() {
        let channels = state.withLockedValue { state in
            state.draining = true
            return Array(state.channels.values)
        }
        for channel in channels {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    func closeAll() {
        let channels = state.withLockedValue { Array($0.channels.values) }
        for channel in channels {
            channel.close(promise: nil)
        }
    }

    /// Waits until every connection closed, or `timeout` passed. Returns whether all closed.
    func waitUntilEmpty(timeout: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if count == 0 { return true }
            try? await Task.sleep(for: .milliseconds(10))
            if Task.isCancelled { return count == 0 }
        }
        return count == 0
    }
}
