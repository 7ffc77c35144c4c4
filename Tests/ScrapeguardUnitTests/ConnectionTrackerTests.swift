@testable import GatewayCore
import NIOCore
import NIOEmbedded
import Testing

/// The drain's wait for the last connection, by promise: it ends when the last one
/// closes, at once when none is open, and at its timeout when one stays. (The 30 s
/// bounds only keep a broken wait from hanging the run.)
@Suite struct ConnectionTrackerTests {
    static let roomy = ConnectionAdmission.Limits(maximumConnections: 10, maximumUnproven: 10, maximumUnprovenPerSource: 10)

    @Test func theWaitEndsWhenTheLastConnectionCloses() async throws {
        let tracker = ConnectionTracker()
        let channels = [NIOAsyncTestingChannel(), NIOAsyncTestingChannel()]
        for channel in channels {
            try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9443)).get()
            #expect(tracker.add(channel, source: "127.0.0.1", limits: Self.roomy) == .admit(evicting: []))
        }
        let waiting = Task { await tracker.waitUntilEmpty(timeout: .seconds(30)) }
        try await channels[0].close()
        #expect(tracker.count == 1)
        try await channels[1].close()
        #expect(await waiting.value, "ended by the last close, long before its timeout")
        #expect(tracker.count == 0)
    }

    @Test func withNoConnectionTheWaitEndsAtOnce() async {
        #expect(await ConnectionTracker().waitUntilEmpty(timeout: .seconds(30)))
    }

    @Test func aConnectionThatStaysEndsTheWaitAtItsTimeout() async throws {
        let tracker = ConnectionTracker()
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9443)).get()
        #expect(tracker.add(channel, source: "127.0.0.1", limits: Self.roomy) == .admit(evicting: []))
        #expect(!(await tracker.waitUntilEmpty(timeout: .milliseconds(20))))
        // A later wait still ends when it closes.
        let waiting = Task { await tracker.waitUntilEmpty(timeout: .seconds(30)) }
        try await channel.close()
        #expect(await waiting.value)
    }

    @Test func aDrainingTrackerAdmitsNoMore() throws {
        let tracker = ConnectionTracker()
        tracker.quiesceAll()
        #expect(tracker.add(NIOAsyncTestingChannel(), source: "127.0.0.1", limits: Self.roomy) == .refuse(.draining))
    }
}
