/// What the PII rules did in one scrape, by rule and action: kept as indices
/// (`rule * actions + action`) and turned into the report's names on demand, since
/// counting by name would hash two strings per label.
struct PIICounts {
    /// The actions in their places: `index(of:)` is the inverse (PseudonymizerTests
    /// holds them to each other and to `PIIAction.allCases`).
    static let actions: [PIIAction] = [.drop, .redact, .hash, .dropSeries]
    private static let actionCount = actions.count
    private var counts: [Int]

    init(policy: PIIPolicy) {
        counts = Array(repeating: 0, count: (policy.labelRules.count + policy.detectorRules.count) * Self.actionCount)
    }

    mutating func add(rule: Int, action: PIIAction) {
        counts[rule * Self.actionCount + Self.index(of: action)] += 1
    }

    /// `action`'s place in `actions`, without searching it.
    static func index(of action: PIIAction) -> Int {
        switch action {
        case .drop: return 0
        case .redact: return 1
        case .hash: return 2
        case .dropSeries: return 3
        }
    }

    /// What was counted between two moments of one scrape: (index, count) pairs.
    struct Delta {
        static let none = Delta(changes: [])
        var changes: [(Int, Int)]
    }

    func delta(since before: PIICounts) -> Delta {
        var changes: [(Int, Int)] = []
        for index in counts.indices where counts[index] != before.counts[index] {
            changes.append((index, counts[index] - before.counts[index]))
        }
        return Delta(changes: changes)
    }

    /// Adds what a `Delta` took down.
    mutating func add(index: Int, count: Int) {
        counts[index] += count
    }

    /// Adds the counts to `report` under the rules' names.
    func add(to report: inout FilterReport, scrubber: PIIScrubber) {
        for (index, count) in counts.enumerated() where count > 0 {
            let rule = scrubber.ruleName(index / Self.actionCount)
            let action = Self.actions[index % Self.actionCount].rawValue
            report.piiActions[FilterReport.PIIKey(rule: rule, action: action), default: 0] += count
        }
    }
}

extension PIIScrubber {
    /// Applies the rules to every label but `__name__`, in the label set's (name)
    /// order; `counts` hears each rule that acted. False when a rule drops the series.
    /// Through `RelabelLabels`, as the fast path scrubs, so that both paths run one
    /// implementation.
    func scrub(_ labels: inout LabelSet, counts: inout PIICounts) -> Bool {
        working.load(labels)
        guard scrub(&working, counts: &counts) else { return false }
        if !working.isUnchanged { labels = working.labelSet }
        return true
    }

    /// The same on labels in place (the fast path's, after relabeling).
    func scrub(_ labels: inout RelabelLabels, counts: inout PIICounts) -> Bool {
        var index = 0
        while index < labels.slots.count {
            let slot = labels.slots[index]
            if labels.withBytes(slot.name, { ExpositionTokens.equal($0, "__name__") }) {
                index += 1
                continue
            }
            let outcome = labels.withBytes(slot.name) { name in
                labels.withBytes(slot.value) { self.outcome(name: name, value: $0) }
            }
            switch outcome {
            case .keep:
                break
            case .replace(let value, let rule, let action):
                counts.add(rule: rule, action: action)
                value.withBytes { labels.setValue(at: index, copying: $0) }
                if value.count == 0 { continue }  // deleted: the next label is at `index` now
            case .dropLabel(let rule):
                counts.add(rule: rule, action: .drop)
                labels.delete(at: index)
                continue
            case .dropSeries(let rule):
                counts.add(rule: rule, action: .dropSeries)
                return false
            }
            index += 1
        }
        return true
    }
}
