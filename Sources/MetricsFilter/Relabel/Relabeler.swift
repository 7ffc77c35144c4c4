internal import COpenSSLShims

/// Runs `metric_relabel_configs` over label sets as Prometheus does (`relabel.Process`):
/// rules in order, each seeing the previous one's result; a drop ends processing. The
/// rules run on `RelabelLabels` (ranges of one buffer), so that a series is relabeled
/// without allocating; a `LabelSet` goes through the same code. Regex results are
/// memoized per distinct value in bounded caches: label values repeat from one scrape
/// to the next, so most lookups never run the regex.
///
/// Not thread-safe: one per filter transform (scrape). Its state is
/// `@exclusivity(unchecked)`, as `StreamingFilter`'s is: only its own methods touch it,
/// on one thread, and no closure it hands out reaches a property being accessed.
public final class Relabeler {
    public var rules: [RelabelRule] { steps.map(\.rule) }
    /// The rules behind references: running a rule then retains one object, where a
    /// copy of the rule would retain each array it holds.
    private let steps: [Step]
    /// The same, reached without a retain and release per rule per series (`steps`
    /// owns them for the relabeler's life).
    private let unretainedSteps: [Unmanaged<Step>]

    private final class Step {
        let rule: RelabelRule

        init(_ rule: RelabelRule) {
            self.rule = rule
        }
    }
    /// Per rule: the regex's answers by a hash of the subject, each with the subject's
    /// bytes to compare (a hash alone never decides).
    @exclusivity(unchecked) private var matchCache: [MatchCache]

    private struct MatchCache {
        /// Places in `answers` by the subject's FNV-1a hash (a hash already: no
        /// `Dictionary`, which would hash it again).
        var places = HashedKeyTable<UInt64, Int>(capacity: 64, placeholder: -1)
        var answers: [(subject: [UInt8], groups: [Int]?)] = []
    }
    private let cacheCapacity: Int
    /// What a rule computes before it is set: a joined source, a target name, a value.
    @exclusivity(unchecked) private var joined: [UInt8] = []
    @exclusivity(unchecked) private var target: [UInt8] = []
    @exclusivity(unchecked) private var result: [UInt8] = []
    /// The labels of a `LabelSet` being relabeled.
    @exclusivity(unchecked) private var working = RelabelLabels()
    /// The slots `labelmap` walks (the labels as they were before it).
    @exclusivity(unchecked) private var mapped: [RelabelLabels.Slot] = []

    public init(rules: [RelabelRule], cacheCapacity: Int = 4096) {
        self.steps = rules.map(Step.init)
        self.unretainedSteps = steps.map { Unmanaged.passUnretained($0) }
        self.matchCache = Array(repeating: MatchCache(), count: rules.count)
        self.cacheCapacity = cacheCapacity
    }

    /// Applies every rule; false when the series is dropped.
    public func apply(_ set: inout LabelSet) -> Bool {
        working.load(set)
        guard apply(&working) else { return false }
        if !working.isUnchanged { set = working.labelSet }
        return true
    }

    /// Applies every rule to labels in place; false when the series is dropped.
    func apply(_ labels: inout RelabelLabels) -> Bool {
        for index in unretainedSteps.indices {
            guard unretainedSteps[index]._withUnsafeGuaranteedRef({ apply($0, index: index, to: &labels) }) else { return false }
        }
        return true
    }

    private func apply(_ step: Step, index: Int, to labels: inout RelabelLabels) -> Bool {
        switch step.rule.action {
        case .drop, .keep, .dropequal, .keepequal, .replace, .lowercase, .uppercase, .hashmod:
            let source = joinedSource(step, labels)
            return apply(step, index: index, source: source, to: &labels)
        case .labelmap:
            mapped.removeAll(keepingCapacity: true)
            mapped.append(contentsOf: labels.slots)
            for slot in mapped where labels.withBytes(slot.name, { matches(step, index, $0) }) {
                target.removeAll(keepingCapacity: true)
                labels.withBytes(slot.name) { step.rule.regex.replaceAll($0, with: step.rule.replacement, into: &target) }
                target.withUnsafeBufferPointer { labels.set($0, valueAt: slot.value) }
            }
        case .labeldrop:
            labels.delete { matches(step, index, $0) }
        case .labelkeep:
            labels.delete { !matches(step, index, $0) }
        }
        return true
    }

    /// Where the rule's joined source labels are: in the labels' buffer (one source
    /// label) or in `joined`.
    private enum Source {
        case labels(Range<Int>)
        case joined
    }

    /// The actions that read the joined source labels.
    private func apply(_ step: Step, index: Int, source: Source, to labels: inout RelabelLabels) -> Bool {
        switch step.rule.action {
        case .drop:
            return !withSource(source, labels) { matches(step, index, $0) }
        case .keep:
            return withSource(source, labels) { matches(step, index, $0) }
        case .dropequal, .keepequal:
            let targetValue = step.rule.targetLabel.withUnsafeBufferPointer { labels.valueRange(of: $0) }
            let equal = withSource(source, labels) { value in labels.withBytes(targetValue) { ExpositionTokens.equal($0, value) } }
            return equal == (step.rule.action == .keepequal)
        case .replace:
            target.removeAll(keepingCapacity: true)
            result.removeAll(keepingCapacity: true)
            let matched = withSource(source, labels) { value -> Bool in
                guard let groups = match(step, index, value) else { return false }
                step.rule.regex.expand(step.rule.targetLabel, subject: value, match: groups, into: &target)
                step.rule.regex.expand(step.rule.replacement, subject: value, match: groups, into: &result)
                return true
            }
            guard matched, step.rule.semantics.isValidLabelName(target) else { return true }
            setTarget(target, to: &labels)
        case .lowercase, .uppercase:
            result.removeAll(keepingCapacity: true)
            withSource(source, labels) { value in
                if step.rule.action == .lowercase {
                    GoCaseMapping.lowercase(value, into: &result)
                } else {
                    GoCaseMapping.uppercase(value, into: &result)
                }
            }
            setTarget(step.rule.targetLabel, to: &labels)
        case .hashmod:
            // A rule is only made where MD5 works; should it fail after all, the series
            // is dropped rather than put in a shard by a hash that is not one.
            guard let hash = withSource(source, labels, Self.md5Tail) else { return false }
            result.removeAll(keepingCapacity: true)
            Self.appendDecimal(hash % step.rule.modulus, to: &result)
            setTarget(step.rule.targetLabel, to: &labels)
        case .labelmap, .labeldrop, .labelkeep:
            break
        }
        return true
    }

    /// Sets the label `name` to `result`.
    private func setTarget(_ name: [UInt8], to labels: inout RelabelLabels) {
        name.withUnsafeBufferPointer { name in
            result.withUnsafeBufferPointer { labels.set(name, copying: $0) }
        }
    }

    private func joinedSource(_ step: Step, _ labels: borrowing RelabelLabels) -> Source {
        if step.rule.sourceLabels.count == 1 {
            return .labels(step.rule.sourceLabels[0].withUnsafeBufferPointer { labels.valueRange(of: $0) })
        }
        joined.removeAll(keepingCapacity: true)
        for (position, name) in step.rule.sourceLabels.enumerated() {
            if position > 0 { joined.append(contentsOf: step.rule.separator) }
            let range = name.withUnsafeBufferPointer { labels.valueRange(of: $0) }
            labels.withBytes(range) { joined.append(contentsOf: $0) }
        }
        return .joined
    }

    private func withSource<Result>(_ source: Source, _ labels: borrowing RelabelLabels,
                                    _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        switch source {
        case .labels(let range): return labels.withBytes(range, body)
        case .joined: return joined.withUnsafeBufferPointer(body)
        }
    }

    /// The match with its groups, for `replace`; memoized per value.
    private func match(_ step: Step, _ index: Int, _ subject: UnsafeBufferPointer<UInt8>) -> [Int]? {
        let found = lookUp(index, subject)
        if found.hit { return matchCache[index].answers[found.place!].groups }
        let groups = step.rule.regex.match(subject)
        remember(groups, index, subject, found)
        return groups
    }

    /// Whether it matches, for every other action: RE2 answers that from its DFA,
    /// without the slower pass that finds groups. Memoized the same way (a rule has
    /// one action, so its cache holds one kind of answer); a hit is read in place,
    /// without taking a copy of the answer (a retain and release per series).
    private func matches(_ step: Step, _ index: Int, _ subject: UnsafeBufferPointer<UInt8>) -> Bool {
        let found = lookUp(index, subject)
        if found.hit { return matchCache[index].answers[found.place!].groups != nil }
        let matched = step.rule.regex.matches(subject)
        remember(matched ? [] : nil, index, subject, found)
        return matched
    }

    /// Where `subject`'s answer is in rule `index`'s cache: its hash, the place that
    /// hash points to, and whether that place holds this very subject.
    private func lookUp(_ index: Int, _ subject: UnsafeBufferPointer<UInt8>) -> (hash: UInt64, place: Int?, hit: Bool) {
        let hash = ByteKey.fnv1a(subject)
        guard let place = matchCache[index].places[hash] else { return (hash, nil, false) }
        let hit = matchCache[index].answers[place].subject.withUnsafeBufferPointer { ExpositionTokens.equal($0, subject) }
        return (hash, place, hit)
    }

    private func remember(_ groups: [Int]?, _ index: Int, _ subject: UnsafeBufferPointer<UInt8>,
                          _ found: (hash: UInt64, place: Int?, hit: Bool)) {
        if let place = found.place {
            // Another value with the same hash: it takes the place.
            matchCache[index].answers[place] = (Array(subject), groups)
            return
        }
        if matchCache[index].answers.count >= cacheCapacity { matchCache[index] = MatchCache() }
        matchCache[index].places[found.hash] = matchCache[index].answers.count
        matchCache[index].answers.append((Array(subject), groups))
    }

    /// `value` in decimal, as Go's `fmt.Sprintf("%d")` writes it.
    private static func appendDecimal(_ value: UInt64, to output: inout [UInt8]) {
        let start = output.count
        var rest = value
        repeat {
            output.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        output[start...].reverse()
    }

    /// MD5 of `value`, its last eight bytes as a big-endian integer (Prometheus's `sum64`);
    /// nil when OpenSSL refuses MD5 (`md5Works`, checked when a hashmod rule is made).
    static func md5Tail(_ value: UnsafeBufferPointer<UInt8>) -> UInt64? {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { digest -> UInt64? in
            guard sg_md5(value.baseAddress, value.count, digest.baseAddress) == 1 else { return nil }
            return digest[8..<16].reduce(0) { ($0 << 8) | UInt64($1) }
        }
    }

    /// Whether this OpenSSL computes MD5 (a FIPS-only provider refuses it): MD5 of
    /// nothing is d41d8cd98f00b204e9800998ecf8427e.
    static let md5Works: Bool = [UInt8]().withUnsafeBufferPointer(md5Tail) == 0xe980_0998_ecf8_427e
}

/// Go's `strings.ToLower`/`ToUpper`: one scalar to one scalar (simple case mapping),
/// which differs from Swift's full mapping (`ß` stays `ß` in upper case).
enum GoCaseMapping {
    static func lowercase(_ bytes: UnsafeBufferPointer<UInt8>, into output: inout [UInt8]) {
        map(bytes, into: &output) { scalar in
            if scalar.value == 0x130 { return "i" }
            return single(scalar.properties.lowercaseMapping) ?? scalar
        }
    }

    static func uppercase(_ bytes: UnsafeBufferPointer<UInt8>, into output: inout [UInt8]) {
        map(bytes, into: &output) { scalar in single(scalar.properties.uppercaseMapping) ?? scalar }
    }

    private static func single(_ mapping: String) -> Unicode.Scalar? {
        let scalars = mapping.unicodeScalars
        return scalars.count == 1 ? scalars.first : nil
    }

    private static func map(_ bytes: UnsafeBufferPointer<UInt8>, into output: inout [UInt8],
                            _ transform: (Unicode.Scalar) -> Unicode.Scalar) {
        if bytes.allSatisfy({ $0 < 0x80 }) {
            for byte in bytes { output.append(UInt8(transform(Unicode.Scalar(byte)).value)) }
            return
        }
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                UTF8.encode(transform(scalar)) { output.append($0) }
            case .emptyInput:
                break loop
            case .error:
                UTF8.encode("\u{FFFD}") { output.append($0) }
            }
        }
    }
}
