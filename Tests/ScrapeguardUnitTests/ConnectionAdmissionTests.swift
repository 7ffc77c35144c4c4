@testable import GatewayCore
import Testing

/// Who may hold a connection, in memory: strangers get a budget and a share per
/// source, and never push out a connection that passed admission.
@Suite struct ConnectionAdmissionTests {
    enum Event: Sendable {
        case arrive(String, from: String)
        case prove(String)
        case close(String)
        case drain
    }

    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var events: [Event]
        /// The last arrival's decision: `admit` with the evicted names and reasons, or `refuse(reason)`.
        var decision: String
        var open: Int
        var unproven: Int
        var testDescription: String { name }
    }

    /// At most 4 open, 3 of them unproven, 2 unproven from one source.
    static let limits = ConnectionAdmission.Limits(maximumConnections: 4, maximumUnproven: 3, maximumUnprovenPerSource: 2)

    static let rows: [Row] = [
        .init(name: "a newcomer is admitted, unproven", events: [.arrive("a", from: "s1")],
              decision: "admit []", open: 1, unproven: 1),
        .init(name: "a source past its share loses its own oldest",
              events: [.arrive("a", from: "s1"), .arrive("b", from: "s2"), .arrive("c", from: "s1"), .arrive("d", from: "s1")],
              decision: "admit [a unauthenticated_per_source]", open: 3, unproven: 3),
        .init(name: "the budget full: the oldest stranger goes",
              events: [.arrive("a", from: "s1"), .arrive("b", from: "s2"), .arrive("c", from: "s3"), .arrive("d", from: "s4")],
              decision: "admit [a unauthenticated_budget]", open: 3, unproven: 3),
        .init(name: "the budget full: the busiest source's oldest goes, not a lone newcomer's",
              events: [.arrive("a", from: "s2"), .arrive("b", from: "s1"), .arrive("c", from: "s1"), .arrive("d", from: "s3")],
              decision: "admit [b unauthenticated_budget]", open: 3, unproven: 3),
        .init(name: "proven connections are outside the budget",
              events: [.arrive("a", from: "s1"), .prove("a"), .arrive("b", from: "s2"), .arrive("c", from: "s3"),
                       .arrive("d", from: "s4")],
              decision: "admit []", open: 4, unproven: 3),
        .init(name: "at max_connections a stranger makes way",
              events: [.arrive("a", from: "s1"), .prove("a"), .arrive("b", from: "s2"), .prove("b"),
                       .arrive("c", from: "s3"), .prove("c"), .arrive("d", from: "s4"), .arrive("e", from: "s5")],
              decision: "admit [d max_connections]", open: 4, unproven: 1),
        .init(name: "at max_connections, all proven: the newcomer is refused",
              events: [.arrive("a", from: "s1"), .prove("a"), .arrive("b", from: "s2"), .prove("b"),
                       .arrive("c", from: "s3"), .prove("c"), .arrive("d", from: "s4"), .prove("d"), .arrive("e", from: "s5")],
              decision: "refuse max_connections", open: 4, unproven: 0),
        .init(name: "a flood from one source never touches a proven connection",
              events: [.arrive("a", from: "s1"), .prove("a")]
                  + (0..<20).map { Event.arrive("x\($0)", from: "s2") },
              decision: "admit [x17 unauthenticated_per_source]", open: 3, unproven: 2),
        .init(name: "a closed connection frees its place",
              events: [.arrive("a", from: "s1"), .arrive("b", from: "s1"), .close("a"), .arrive("c", from: "s1")],
              decision: "admit []", open: 2, unproven: 2),
        .init(name: "proving frees the source's share",
              events: [.arrive("a", from: "s1"), .arrive("b", from: "s1"), .prove("a"), .arrive("c", from: "s1")],
              decision: "admit []", open: 3, unproven: 2),
        .init(name: "a draining server admits no one", events: [.arrive("a", from: "s1"), .drain, .arrive("b", from: "s2")],
              decision: "refuse draining", open: 1, unproven: 1),
    ]

    @Test(arguments: rows)
    func decision(_ row: Row) {
        var admission = ConnectionAdmission()
        var names: [String: Token] = [:]
        var decision = ""
        func id(_ name: String) -> ObjectIdentifier {
            if names[name] == nil { names[name] = Token(name) }
            return ObjectIdentifier(names[name]!)
        }
        for event in row.events {
            switch event {
            case .arrive(let name, let source):
                switch admission.arrive(id(name), source: source, limits: Self.limits) {
                case .admit(let evictions):
                    let evicted = evictions.map { eviction in
                        "\(names.first { ObjectIdentifier($0.value) == eviction.id }?.key ?? "?") \(eviction.reason.rawValue)"
                    }
                    decision = "admit [\(evicted.joined(separator: ", "))]"
                case .refuse(let limit):
                    decision = "refuse \(limit.rawValue)"
                }
            case .prove(let name): admission.proved(id(name))
            case .close(let name): admission.closed(id(name))
            case .drain: admission.startDraining()
            }
        }
        #expect(decision == row.decision)
        #expect(admission.count == row.open)
        #expect(admission.unprovenCount == row.unproven)
        if row.name.contains("proven connection") {
            #expect(admission.isProven(id("a")) == true)
        }
    }

    final class Token: Sendable {
        let name: String
        init(_ name: String) { self.name = name }
    }
}
