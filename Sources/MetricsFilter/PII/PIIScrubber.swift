#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Applies a `PIIPolicy` to label sets, memoizing what it does per label name.
/// Not thread-safe: one per scrape.
final class PIIScrubber {
    let policy: PIIPolicy
    /// What the policy does with a label of this name, memoized per name.
    private var decisions: [ByteKey: NameDecision] = [:]
    /// The names met last, for `decision(forNameIn:)`: plain values in one array and
    /// the names' bytes in another, so that looking one up retains nothing.
    @exclusivity(unchecked) private var recentNames: [RecentName] = []
    @exclusivity(unchecked) private var recentNameBytes: [UInt8] = []
    private static let recentNamesCapacity = 64
    private let cacheCapacity = 8192

    enum Outcome {
        case keep
        case replace(Replacement, rule: Int, action: PIIAction)
        case dropLabel(rule: Int)
        case dropSeries(rule: Int)
    }

    /// What a value is replaced by: the policy's marker, or a pseudonym made inline.
    /// Plain values, nothing to retain: the fast path keeps one per label of a line.
    enum Replacement {
        /// The scrubber's copies of the marker (`markers`), as it is and escaped as a
        /// text label value: valid while the scrubber lives.
        case marker(UnsafeBufferPointer<UInt8>, escaped: UnsafeBufferPointer<UInt8>)
        case pseudonym(Pseudonym)

        func withBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
            switch self {
            case .marker(let marker, _): return try body(marker)
            case .pseudonym(let pseudonym): return try pseudonym.withBytes(body)
            }
        }

        /// The bytes as a label value in the text format: a pseudonym (`h_` and hex
        /// digits) as it is, a marker escaped.
        func withEscapedBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
            switch self {
            case .marker(_, let escaped): return try body(escaped)
            case .pseudonym(let pseudonym): return try pseudonym.withBytes(body)
            }
        }

        var count: Int {
            switch self {
            case .marker(let marker, _): return marker.count
            case .pseudonym: return Pseudonym.count
            }
        }
    }

    private enum NameDecision {
        /// The first label rule (an index in `labelRules`) that names it.
        case labelRule(Int)
        /// No label rule names it: its values go through the detectors.
        case detectors
        /// No label rule names it and it is exempt from detection.
        case exempt
    }

    private struct RecentName {
        /// The name's length and its first and last bytes.
        var hash: UInt64
        var start: Int
        var count: Int
        var decision: NameDecision
    }

    /// The labels of a `LabelSet` being scrubbed (see `scrub(_:counts:)`).
    @exclusivity(unchecked) var working = RelabelLabels()
    /// The policy's marker, then the same escaped as a text label value, in memory of
    /// the scrubber's own, which a `Replacement` can point at without retaining an array.
    private let markers: UnsafeMutableBufferPointer<UInt8>
    private let marker: Replacement
    /// Whether a rule can end a series (`drop_series`). Only then does the order in
    /// which a series' labels are met change what is counted: the rules met before
    /// the one that ends it count, those after it do not.
    let canDropSeries: Bool

    init(policy: PIIPolicy) {
        self.policy = policy
        var escaped: [UInt8] = []
        ExpositionWriter.escape(policy.marker, into: &escaped)
        let both = policy.marker + escaped
        markers = .allocate(capacity: max(both.count, 1))
        _ = markers.initialize(fromContentsOf: both)
        marker = .marker(UnsafeBufferPointer(rebasing: markers[0..<policy.marker.count]),
                         escaped: UnsafeBufferPointer(rebasing: markers[policy.marker.count..<both.count]))
        canDropSeries = policy.labelRules.contains { $0.action == .dropSeries }
            || policy.detectorRules.contains { $0.action == .dropSeries }
    }

    deinit {
        markers.deallocate()
    }

    private func decision(for name: [UInt8]) -> NameDecision {
        let key = ByteKey(name)
        if let cached = decisions[key] { return cached }
        var found = policy.detectorExemptLabels.contains(name) ? NameDecision.exempt : .detectors
        for (index, rule) in policy.labelRules.enumerated() {
            if rule.labelNames.contains(name) { found = .labelRule(index); break }
            if let regex = rule.labelRegex, regex.matches(name) {
                found = .labelRule(index)
                break
            }
        }
        if decisions.count >= cacheCapacity { decisions.removeAll(keepingCapacity: true) }
        decisions[key] = found
        return found
    }

    /// The decision for a name in a line, found without copying the name: the names
    /// seen last are compared by their length and end bytes, then byte for byte. An
    /// exposition has few label names, so the list is short (a hash of every byte,
    /// byte-serial, cost more than the comparisons it saved).
    private func decision(forNameIn name: UnsafeBufferPointer<UInt8>) -> NameDecision {
        let hash = name.isEmpty ? 0 : UInt64(name.count) | UInt64(name[0]) << 32 | UInt64(name[name.count - 1]) << 40
        let known = recentNames.withUnsafeBufferPointer { entries in
            recentNameBytes.withUnsafeBufferPointer { bytes -> NameDecision? in
                for entry in entries where entry.hash == hash && entry.count == name.count {
                    if name.isEmpty || memcmp(bytes.baseAddress! + entry.start, name.baseAddress!, name.count) == 0 {
                        return entry.decision
                    }
                }
                return nil
            }
        }
        if let known { return known }
        let found = decision(for: Array(name))
        if recentNames.count >= Self.recentNamesCapacity {
            recentNames.removeAll(keepingCapacity: true)
            recentNameBytes.removeAll(keepingCapacity: true)
        }
        recentNames.append(RecentName(hash: hash, start: recentNameBytes.count, count: name.count, decision: found))
        recentNameBytes.append(contentsOf: name)
        return found
    }

    /// What the policy does to one label. Rule numbers: label rules first, then
    /// detectors. Only the decision by name is memoized: detectors are byte scans
    /// cheaper than a cache of (name, value) keys would be.
    func outcome(name: [UInt8], value: [UInt8]) -> Outcome {
        let decision = decision(for: name)
        return value.withUnsafeBufferPointer { outcome(decision, value: $0) }
    }

    /// The same for a label read in place in a line.
    func outcome(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) -> Outcome {
        outcome(decision(forNameIn: name), value: value)
    }

    private func outcome(_ decision: NameDecision, value: UnsafeBufferPointer<UInt8>) -> Outcome {
        switch decision {
        case .labelRule(let index):
            return apply(policy.labelRules[index].action, to: value, rule: index)
        case .exempt:
            return .keep
        case .detectors:
            for (offset, rule) in policy.detectorRules.enumerated() where PIIDetection.contains(rule.detector, in: value) {
                return apply(rule.action, to: value, rule: policy.labelRules.count + offset)
            }
            return .keep
        }
    }

    private func apply(_ action: PIIAction, to value: UnsafeBufferPointer<UInt8>, rule: Int) -> Outcome {
        switch action {
        case .drop: return .dropLabel(rule: rule)
        case .redact: return .replace(marker, rule: rule, action: .redact)
        case .hash:
            let replacement = policy.inlinePseudonym(value).map(Replacement.pseudonym) ?? marker
            return .replace(replacement, rule: rule, action: .hash)
        case .dropSeries: return .dropSeries(rule: rule)
        }
    }

    func ruleName(_ index: Int) -> String {
        index < policy.labelRules.count
            ? policy.labelRules[index].name : policy.detectorRules[index - policy.labelRules.count].name
    }
}
