import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// What `/readyz` reports: ready while certificates are loaded, the app answered
/// recently and the gateway is not draining.
package final class GatewayHealth: Sendable {
    private struct State {
        var draining = false
        var certificatesLoaded = false
        var lastUpstreamAnswer: NIODeadline?
    }

    private let state = NIOLockedValueBox(State())
    /// How long an answer from the app counts as recent.
    let upstreamFreshness: TimeAmount

    package init(upstreamFreshness: TimeAmount = .seconds(10)) {
        self.upstreamFreshness = upstreamFreshness
    }

    package var isDraining: Bool { state.withLockedValue { $0.draining } }

    func startDraining() { state.withLockedValue { $0.draining = true } }
    func certificatesLoaded() { state.withLockedValue { $0.certificatesLoaded = true } }
    func upstreamAnswered(at time: NIODeadline = .now()) { state.withLockedValue { $0.lastUpstreamAnswer = time } }

    var upstreamAnsweredRecently: Bool {
        state.withLockedValue { state in
            guard let last = state.lastUpstreamAnswer else { return false }
            return NIODeadline.now() - last < upstreamFreshness
        }
    }

    /// Why the gateway is not ready, or nil when it is.
    var notReadyReason: String? {
        state.withLockedValue { state in
            if state.draining { return "draining" }
            if !state.certificatesLoaded { return "certificates not loaded" }
            return nil
        }
    }
}
