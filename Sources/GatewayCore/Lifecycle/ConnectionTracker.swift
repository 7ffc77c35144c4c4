import NIOConcurrencyHelpers
import NIOCore

/// The open client connections of a server: who may hold one (`ConnectionAdmission`
/// decides; this closes whom it evicts), and a drain that closes idle keep-alive
/// connections at once and lets in-flight scrapes finish (NIO's HTTP pipeline does
/// both when it sees `ChannelShouldQuiesceEvent`).
///
/// A drain waits for the last connection by promise, not by polling: each close that
/// leaves none open resumes whoever waits.
final class ConnectionTracker: Sendable {
    private struct State {
        var admission = ConnectionAdmission()
        var channels: [ObjectIdentifier: Channel] = [:]
        /// Who waits for the last connection to close, by ticket.
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        /// Tickets whose wait was cancelled before it began.
        var cancelled: Set<Int> = []
        var nextTicket = 0
    }

    private let state = NIOLockedValueBox(State())

    var count: Int { state.withLockedValue { $0.channels.count } }
    var unprovenCount: Int { state.withLockedValue { $0.admission.unprovenCount } }

    /// Registers a new connection from `source` (its IP address), closing the ones
    /// the admission evicts to make room. On `.refuse` the caller closes the newcomer.
    func add(_ channel: Channel, source: String, limits: ConnectionAdmission.Limits) -> ConnectionAdmission.Decision {
        let id = ObjectIdentifier(channel)
        let (decision, evicted) = state.withLockedValue { state -> (ConnectionAdmission.Decision, [Channel]) in
            let decision = state.admission.arrive(id, source: source, limits: limits)
            guard case .admit(let evictions) = decision else { return (decision, []) }
            let evicted = evictions.compactMap { state.channels.removeValue(forKey: $0.id) }
            state.channels[id] = channel
            return (decision, evicted)
        }
        for channel in evicted {
            channel.close(promise: nil)
        }
        if case .admit = decision {
            channel.closeFuture.whenComplete { [weak self] _ in
                self?.removed(channel)
            }
        }
        return decision
    }

    /// The connection's first request passed admission: it is no longer a stranger's.
    func proved(_ channel: Channel) {
        state.withLockedValue { $0.admission.proved(ObjectIdentifier(channel)) }
    }

    /// Stops admitting connections and asks every open one to finish what it is doing
    /// and close.
    func quiesceAll() {
        let channels = state.withLockedValue { state in
            state.admission.startDraining()
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
            state.admission.closed(ObjectIdentifier(channel))
            // An evicted channel left the table when it was evicted; another may
            // since have been allocated at its address, so remove only this one.
            if let current = state.channels[ObjectIdentifier(channel)], current === channel {
                state.channels.removeValue(forKey: ObjectIdentifier(channel))
            }
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
