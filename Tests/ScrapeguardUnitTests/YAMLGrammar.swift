import TestSupport

/// YAML documents drawn at random for the composer's differential test against Yams:
/// block and flow collections, every scalar style (plain, quoted, literal, folded),
/// values that YAML 1.1 resolves (`yes`, `010`, `~`), anchors and aliases to them,
/// and now and then a duplicate key or a broken line, so that refusals are compared
/// too. Fixed seed: the same documents on every run.
struct YAMLGrammar {
    private var random: SplitMix64
    private var anchors: [String] = []
    private var anchorCount = 0

    init(seed: UInt64) {
        random = SplitMix64(seed: seed)
    }

    private mutating func below(_ bound: Int) -> Int { random.below(bound) }

    private mutating func pick<T>(_ choices: [T]) -> T { random.pick(choices) }

    private static let words = [
        "a", "url", "tls_server_config", "cert_file", "yes", "No", "on", "OFF", "true", "tRUE", "~", "null", "NULL",
        "010", "0x1F", "0o17", "0b101", "1_000", "-7", "+7", "08", "1e3", "3.5", ".inf", "1:30", "2026-11-30",
        "10s", "64MiB", "spiffe://cluster.local/ns/x", "a b", "é", "日本", "x-y", "_", "<<", "=",
    ]

    mutating func document() -> String {
        anchors = []
        var text = ""
        if below(8) == 0 { text += "# a comment\n" }
        if below(10) == 0 { text += "---\n" }
        text += blockMapping(depth: 0, indent: 0)
        if below(25) == 0 { text += pick(["key: [unclosed\n", "\tkey: tab\n", "k: v: w\n", "- item\n", "k: 'open\n"]) }
        return text
    }

    private mutating func anchorPrefix() -> String {
        guard below(6) == 0 else { return "" }
        anchorCount += 1
        let name = "n\(anchorCount)"
        anchors.append(name)
        return "&\(name) "
    }

    private mutating func key(_ used: inout [String]) -> String {
        if !used.isEmpty, below(30) == 0 { return pick(used) }  // a duplicate, now and then
        var word = pick(Self.words)
        if below(3) == 0 { word += "\(below(100))" }
        if word.contains(" ") || word.hasPrefix("<") || word == "~" || word == "=" { word = "\"\(word)\"" }
        used.append(word)
        return word
    }

    private mutating func blockMapping(depth: Int, indent: Int) -> String {
        var used: [String] = []
        var text = ""
        for _ in 0..<(1 + below(4)) {
            text += String(repeating: " ", count: indent) + key(&used) + ":" + value(depth: depth + 1, indent: indent)
        }
        return text
    }

    /// After `key:` (or `- `): a scalar on the line, or a nested block.
    private mutating func value(depth: Int, indent: Int) -> String {
        if !anchors.isEmpty, below(12) == 0 { return " *\(pick(anchors))\n" }
        switch depth > 4 ? 0 : below(6) {
        case 1:
            let anchor = anchorPrefix()
            return " " + anchor + "\n" + blockMapping(depth: depth, indent: indent + 2)
        case 2:
            let anchor = anchorPrefix()
            var text = " " + anchor + "\n"
            for _ in 0..<(1 + below(3)) {
                text += String(repeating: " ", count: indent + 2) + "-" + value(depth: depth + 1, indent: indent + 2)
            }
            return text
        case 3:
            return " " + anchorPrefix() + flow(depth: depth) + "\n"
        default:
            return scalar(indent: indent)
        }
    }

    private mutating func flow(depth: Int) -> String {
        if depth > 4 || below(3) == 0 { return flowScalar() }
        if below(2) == 0 {
            return "[" + (0..<below(4)).map { _ in flow(depth: depth + 1) }.joined(separator: ", ") + "]"
        }
        var used: [String] = []
        return "{" + (0..<below(4)).map { _ in key(&used) + ": " + flow(depth: depth + 1) }.joined(separator: ", ") + "}"
    }

    private mutating func flowScalar() -> String {
        switch below(4) {
        case 0: return "'" + pick(Self.words).replacingAll("'", with: "''") + "'"
        case 1: return "\"" + pick(["\\t", "\\n", "\\u00e9", "\\\"", "x", "yes", "010"]) + pick(Self.words) + "\""
        default:
            let word = pick(Self.words)
            return word.contains(" ") || word == "<<" || word == "~" ? "\"\(word)\"" : word
        }
    }

    private mutating func scalar(indent: Int) -> String {
        let anchor = anchorPrefix()
        switch below(7) {
        case 0:
            return " " + anchor + "|\n" + String(repeating: " ", count: indent + 2) + pick(Self.words) + "\n"
                + String(repeating: " ", count: indent + 2) + pick(Self.words) + "\n"
        case 1:
            return " " + anchor + ">-\n" + String(repeating: " ", count: indent + 2) + pick(Self.words) + "\n"
        case 2:
            return anchor.isEmpty ? "\n" : " " + anchor + "\n"  // an empty value: null
        default:
            return " " + anchor + flowScalar() + "\n"
        }
    }
}

extension String {
    fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        for character in self { if character == target { result += replacement } else { result.append(character) } }
        return result
    }
}
