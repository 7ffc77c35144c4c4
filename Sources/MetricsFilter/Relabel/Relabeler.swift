internal import COpenSSLShims

/// Runs `metric_relabel_configs` over label sets as Prometheus does (`relabel.Process`):
/// rules in order, each seeing the previous one's result; a drop ends processing. Regex
/// results are memoized per distinct value in bounded caches: label values repeat
/// from one scrape to the next, so most lookups never run the regex.
///
/// Not thread-safe: one per filter transform (scrape).
public final class Relabeler {
    public let rules: [RelabelRule]
    private var matchCache: [[ByteKey: [Int]?]]
    private let cacheCapacity: Int

    public init(rules: [RelabelRule], cacheCapacity: Int = 4096) {
        self.rules = rules
        self.matchCache = Array(repeating: [:], count: rules.count)
        self.cacheCapacity = cacheCapacity
    }

    /// Applies every rule; false when the series is dropped.
    public func apply(_ set: inout LabelSet) -> Bool {
        // By index: `enumerated()` would copy each rule (and retain what it holds).
        for index in rules.indices {
            guard apply(rules[index], index: index, to: &set) else { return false }
        }
        return true
    }

    private func apply(_ rule: RelabelRule, index: Int, to set: inout LabelSet) -> Bool {
        let value = joinedSource(rule, set)
        switch rule.action {
        case .drop:
            return !matches(index, value)
        case .keep:
            return matches(index, value)
        case .dropequal:
            return set.value(rule.targetLabel) != value
        case .keepequal:
            return set.value(rule.targetLabel) == value
        case .replace:
            guard let groups = match(index, value) else { return true }
            let target = rule.regex.expand(rule.targetLabel, subject: value, match: groups)
            guard rule.semantics.isValidLabelName(target) else { return true }
            let result = rule.regex.expand(rule.replacement, subject: value, match: groups)
            set.set(target, result)
        case .lowercase:
            set.set(rule.targetLabel, GoCaseMapping.lowercased(value))
        case .uppercase:
            set.set(rule.targetLabel, GoCaseMapping.uppercased(value))
        case .hashmod:
            // A rule is only made where MD5 works; should it fail after all, the series
            // is dropped rather than put in a shard by a hash that is not one.
            guard let hash = Self.md5Tail(value) else { return false }
            set.set(rule.targetLabel, Array(String(hash % rule.modulus).utf8))
        case .labelmap:
            let original = set.labels
            for label in original where matches(index, label.name) {
                set.set(rule.regex.replaceAll(label.name, with: rule.replacement), label.value)
            }
        case .labeldrop:
            set.delete { matches(index, $0.name) }
        case .labelkeep:
            set.delete { !matches(index, $0.name) }
        }
        return true
    }

    private func joinedSource(_ rule: RelabelRule, _ set: LabelSet) -> [UInt8] {
        if rule.sourceLabels.count == 1 { return set.value(rule.sourceLabels[0]) }
        var value: [UInt8] = []
        for (position, name) in rule.sourceLabels.enumerated() {
            if position > 0 { value.append(contentsOf: rule.separator) }
            value.append(contentsOf: set.value(name))
        }
        return value
    }

    /// The match with its groups, for `replace`; memoized per value.
    private func match(_ index: Int, _ subject: [UInt8]) -> [Int]? {
        memoized(index, subject) { rules[index].regex.match(subject) }
    }

    /// Whether it matches, for every other action: RE2 answers that from its DFA,
    /// without the slower pass that finds groups. Memoized the same way (a rule has
    /// one action, so its cache holds one kind of answer).
    private func matches(_ index: Int, _ subject: [UInt8]) -> Bool {
        memoized(index, subject) { rules[index].regex.matches(subject) ? [] : nil } != nil
    }

    private func memoized(_ index: Int, _ subject: [UInt8], _ compute: () -> [Int]?) -> [Int]? {
        let key = ByteKey(subject)
        if let cached = matchCache[index][key] { return cached }
        let result = compute()
        if matchCache[index].count >= cacheCapacity { matchCache[index].removeAll(keepingCapacity: true) }
        matchCache[index][key] = .some(result)
        return result
    }

    /// MD5 of `value`, its last eight bytes as a big-endian integer (Prometheus's `sum64`);
    /// nil when OpenSSL refuses MD5 (`md5Works`, checked when a hashmod rule is made).
    static func md5Tail(_ value: [UInt8]) -> UInt64? {
        var digest = [UInt8](repeating: 0, count: 16)
        let done = value.withUnsafeBufferPointer { buffer in
            digest.withUnsafeMutableBufferPointer { sg_md5(buffer.baseAddress, buffer.count, $0.baseAddress) }
        }
        guard done == 1 else { return nil }
        return digest[8..<16].reduce(0) { ($0 << 8) | UInt64($1) }
    }

    /// Whether this OpenSSL computes MD5 (a FIPS-only provider refuses it): MD5 of
    /// nothing is d41d8cd98f00b204e9800998ecf8427e.
    static let md5Works: Bool = md5Tail([]) == 0xe980_0998_ecf8_427e
}

/// Go's `strings.ToLower`/`ToUpper`: one scalar to one scalar (simple case mapping),
/// which differs from Swift's full mapping (`ß` stays `ß` in upper case).
enum GoCaseMapping {
    static func lowercased(_ bytes: [UInt8]) -> [UInt8] {
        map(bytes) { scalar in
            if scalar.value == 0x130 { return "i" }
            return single(scalar.properties.lowercaseMapping) ?? scalar
        }
    }

    static func uppercased(_ bytes: [UInt8]) -> [UInt8] {
        map(bytes) { scalar in single(scalar.properties.uppercaseMapping) ?? scalar }
    }

    private static func single(_ mapping: String) -> Unicode.Scalar? {
        let scalars = mapping.unicodeScalars
        return scalars.count == 1 ? scalars.first : nil
    }

    private static func map(_ bytes: [UInt8], _ transform: (Unicode.Scalar) -> Unicode.Scalar) -> [UInt8] {
        if bytes.allSatisfy({ $0 < 0x80 }) {
            return asciiMap(bytes, transform)
        }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
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
        return output
    }

    private static func asciiMap(_ bytes: [UInt8], _ transform: (Unicode.Scalar) -> Unicode.Scalar) -> [UInt8] {
        bytes.map { UInt8(transform(Unicode.Scalar($0)).value) }
    }
}
