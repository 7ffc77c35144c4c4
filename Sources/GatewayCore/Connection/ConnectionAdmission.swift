/// Who may hold a connection, as a value: the decisions of `ConnectionTracker`.
///
/// A connection is *unproven* from its accept until its first request passes
/// admission (rate limit and credentials), and *proven* after. Unproven connections
/// cost an attacker nothing (no certificate, no password), so they get a budget of
/// their own, smaller than `max_connections`, and a share of it per source address;
/// when either is full the oldest unproven connection (of that source, for the share)
/// is closed to make room, so a stranger who holds connections open only churns his
/// own. Proven connections are never closed or refused because of unproven ones:
/// when `max_connections` is reached, an unproven connection makes way, and only when
/// every open connection is proven is a newcomer refused.
struct ConnectionAdmission {
    struct Limits: Equatable {
        var maximumConnections: Int
        var maximumUnproven: Int
        var maximumUnprovenPerSource: Int
    }

    enum Decision: Equatable {
        /// Admit the newcomer (as unproven) after closing these, each for its reason.
        case admit(evicting: [Eviction])
        case refuse(ConnectionLimit)
    }

    struct Eviction: Equatable {
        var id: ObjectIdentifier
        var reason: ConnectionLimit
    }

    private struct Entry {
        var source: String
        var proven: Bool
    }

    private var entries: [ObjectIdentifier: Entry] = [:]
    /// Unproven connections, oldest first. At most `maximumUnproven` long, so a
    /// linear search costs less than keeping an index.
    private var unproven: [ObjectIdentifier] = []
    private var unprovenBySource: [String: Int] = [:]
    private(set) var draining = false

    var count: Int { entries.count }
    var unprovenCount: Int { unproven.count }

    func isProven(_ id: ObjectIdentifier) -> Bool? { entries[id]?.proven }

    /// A connection was accepted from `source` (its IP address).
    mutating func arrive(_ id: ObjectIdentifier, source: String, limits: Limits) -> Decision {
        guard !draining else { return .refuse(.draining) }
        var evictions: [Eviction] = []
        if unprovenBySource[source, default: 0] >= limits.maximumUnprovenPerSource,
            let oldest = unproven.first(where: { entries[$0]?.source == source })
        {
            evictions.append(Eviction(id: oldest, reason: .unprovenPerSource))
            remove(oldest)
        } else if unproven.count >= limits.maximumUnproven, let oldest = oldestOfTheBusiestSource() {
            evictions.append(Eviction(id: oldest, reason: .unprovenBudget))
            remove(oldest)
        }
        if entries.count >= limits.maximumConnections {
            guard let oldest = unproven.first else {
                // Every open connection is proven (nothing was evicted above: an
                // eviction frees a place, so the count is below the limit).
                return .refuse(.maxConnections)
            }
            evictions.append(Eviction(id: oldest, reason: .maxConnections))
            remove(oldest)
        }
        entries[id] = Entry(source: source, proven: false)
        unproven.append(id)
        unprovenBySource[source, default: 0] += 1
        return .admit(evicting: evictions)
    }

    /// The connection's first request passed admission.
    mutating func proved(_ id: ObjectIdentifier) {
        guard var entry = entries[id], !entry.proven else { return }
        removeUnproven(id, entry)
        entry.proven = true
        entries[id] = entry
    }

    /// The connection closed (evicted ones are already gone).
    mutating func closed(_ id: ObjectIdentifier) {
        remove(id)
    }

    /// No one is admitted from now on.
    mutating func startDraining() {
        draining = true
    }

    /// The oldest unproven connection of the source that holds the most of them: an
    /// attacker spread over many addresses churns his own before a scraper's lone
    /// connection in its handshake.
    private func oldestOfTheBusiestSource() -> ObjectIdentifier? {
        guard let most = unprovenBySource.values.max() else { return nil }
        return unproven.first { unprovenBySource[entries[$0]?.source ?? "", default: 0] == most }
    }

    private mutating func remove(_ id: ObjectIdentifier) {
        guard let entry = entries.removeValue(forKey: id) else { return }
        if !entry.proven { removeUnproven(id, entry) }
    }

    private mutating func removeUnproven(_ id: ObjectIdentifier, _ entry: Entry) {
        if let index = unproven.firstIndex(of: id) {
            unproven.remove(at: index)
        }
        let left = unprovenBySource[entry.source, default: 1] - 1
        unprovenBySource[entry.source] = left > 0 ? left : nil
    }
}
