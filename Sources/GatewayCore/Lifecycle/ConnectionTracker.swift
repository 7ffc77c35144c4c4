import NIOConcurrencyHelpers
import NIOCore

/// The open client connections of a server: for the connection limit, and for a
/// drain that closes idle keep-alive connections at once and lets in-flight scrapes
/// finish (NIO's HTTP pipeline does both when it sees `ChannelShouldQuiesceEvent`).
///
/// A drain waits for the last connection by promise, not by polling: each close that
/// leaves none open resumes whoever waits.
final class ConnectionTracker: Sendable {
    private struct State {
        var channels: [ObjectIdentifier: Channel] = [:]
        var draining = false
        /// Who waits for the last connection to close, by ticket.
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        /// Tickets whose wait was cancelled before it began.
        var cancelled: Set<Int> = []
        var nextTicket = 0
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
                self?.removed(channel)
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
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.empty()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first || count == 0
        }
    }

    private func removed(_ channel: Channel) {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.channels.removeValue(forKey: ObjectIdentifier(channel))
            guard state.channels.isEmpty else { return [] }
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once no connection is open (at once when none is), or when cancelled.
    private func empty() async {
        let ticket = state.withLockedValue { state -> Int in
            state.nextTicket += 1
            return state.nextTicket
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLockedValue { state -> Bool in
                    if state.channels.isEmpty || state.cancelled.remove(ticket) != nil { return true }
                    state.waiters[ticket] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                guard let waiter = state.waiters.removeValue(forKey: ticket) else {
                    state.cancelled.insert(ticket)  // cancelled before the wait began
                    return nil
                }
                return waiter
            }
            waiter?.resume()
        }
    }
}
