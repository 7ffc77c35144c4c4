/// Relabel rules that decide by names alone, so that the fast path can apply them to a
/// line in place: `drop`/`keep` whose only source label is `__name__`, and
/// `labeldrop`/`labelkeep` that leave `__name__` in place. With only such rules the
/// order does not matter (no rule changes what another reads), so a series is kept
/// or dropped by its metric name, and each label by its own name; both are memoized.
///
/// `init` returns nil for any other rule list: those take the full path.
/// Not thread-safe: one per filter (scrape).
final class NameRelabeling {
    private let seriesRules: [RelabelRule]
    private let labelRules: [RelabelRule]
    /// Metric names seen, by a hash of their bytes; bounded.
    private var seriesVerdicts: [UInt64: (name: [UInt8], keep: Bool)] = [:]
    /// Label names seen; an exposition has few.
    private var labelVerdicts: [(name: [UInt8], keep: Bool)] = []
    private let cacheCapacity = 8192

    init?(rules: [RelabelRule]) {
        var seriesRules: [RelabelRule] = []
        var labelRules: [RelabelRule] = []
        for rule in rules {
            switch rule.action {
            case .drop, .keep:
                guard rule.sourceLabels == [LabelSet.metricNameLabel] else { return nil }
                seriesRules.append(rule)
            case .labeldrop:
                guard !rule.regex.matches(LabelSet.metricNameLabel) else { return nil }
                labelRules.append(rule)
            case .labelkeep:
                guard rule.regex.matches(LabelSet.metricNameLabel) else { return nil }
                labelRules.append(rule)
            default:
                return nil
            }
        }
        self.seriesRules = seriesRules
        self.labelRules = labelRules
    }

    /// Whether a label rule may drop a label (so that edits are needed).
    var changesLabels: Bool { !labelRules.isEmpty }

    /// Whether the rules keep a series of this metric name.
    func keepsSeries(named name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !seriesRules.isEmpty else { return true }
        let hash = ByteKey.fnv1a(name)
        if let entry = seriesVerdicts[hash], entry.name.withUnsafeBufferPointer({ ExpositionTokens.equal(name, $0) }) {
            return entry.keep
        }
        let copy = Array(name)
        let keep = Self.keeps(copy, by: seriesRules, droppedOnMatch: .drop)
        if seriesVerdicts.count >= cacheCapacity { seriesVerdicts.removeAll(keepingCapacity: true) }
        seriesVerdicts[hash] = (copy, keep)
        return keep
    }

    /// Whether the rules keep a label of this name.
    func keepsLabel(named name: UnsafeBufferPointer<UInt8>) -> Bool {
        for entry in labelVerdicts where entry.name.withUnsafeBufferPointer({ ExpositionTokens.equal($0, name) }) {
            return entry.keep
        }
        let copy = Array(name)
        let keep = Self.keeps(copy, by: labelRules, droppedOnMatch: .labeldrop)
        if labelVerdicts.count >= 64 { labelVerdicts.removeFirst() }
        labelVerdicts.append((copy, keep))
        return keep
    }

    /// Every rule keeps `name`: a rule whose action is `droppedOnMatch` drops on a
    /// match, the other kind (keep, labelkeep) drops on no match.
    private static func keeps(_ name: [UInt8], by rules: [RelabelRule],
                              droppedOnMatch: RelabelAction) -> Bool {
        rules.allSatisfy { rule in
            rule.regex.matches(name) != (rule.action == droppedOnMatch)
        }
    }
}
