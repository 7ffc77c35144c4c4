import Foundation
@testable import MetricsFilter
import TestSupport
import Testing

/// RelabelRegex against Go's own regexp (Tests/Support/go_regexp_oracle.go, run with
/// Debian's Go): patterns drawn from a grammar of Go's syntax, valid and not, each
/// compiled both ways under both anchorings and matched on drawn values. Acceptance,
/// the error text, every submatch index, the expansion of a template (`replace`) and
/// the replacement of every match (`labelmap`) must agree.
///
/// The seed is fixed (`SCRAPEGUARD_ORACLE_SEED` and `SCRAPEGUARD_ORACLE_CASES` change
/// it and the count for a long run; docs/ARCHITECTURE.md has the command). Not drawn:
/// `(?<name>…)`, which Go 1.22 added (Prometheus 3 is built with a later Go; Debian's
/// is 1.19), and characters that Unicode 14 and 15 added, whose classes differ
/// between Go versions and RE2's tables.
@Suite struct RelabelOracleTests {
    @Test func generatedPatternsDecideAsGoDecides() async throws {
        let environment = ProcessInfo.processInfo.environment
        let seed = UInt64(environment["SCRAPEGUARD_ORACLE_SEED"] ?? "") ?? 1
        let count = Int(environment["SCRAPEGUARD_ORACLE_CASES"] ?? "") ?? 4000
        guard let go = Self.findGo() else {
            Issue.record("Go is not installed (Debian's golang-go): run `make test-deps`")
            return
        }
        var generator = PatternGrammar(seed: seed)
        var cases: [OracleCase] = []
        for index in 0..<count {
            let pattern = generator.pattern()
            cases.append(OracleCase(pattern: pattern, semantics: index % 2 == 0 ? .prometheus3 : .prometheus2,
                                    values: generator.values(for: pattern)))
        }
        var input = Data()
        for testCase in cases {
            let request: [String: Any] = [
                "pattern": testCase.pattern, "anchor": testCase.semantics == .prometheus3 ? "s" : "n",
                "values": testCase.values, "template": OracleCase.template,
            ]
            input.append(try JSONSerialization.data(withJSONObject: request))
            input.append(0x0A)
        }
        let cache = Repository.root.appendingPathComponent(".build/go-cache").path
        let result = try await ProcessRunner.run(
            ["env", "GOCACHE=\(cache)", "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod", go, "run",
             Repository.root.appendingPathComponent("Tests/Support/go_regexp_oracle.go").path],
            stdin: input, timeout: 600)
        try #require(result.status == 0, "the Go oracle failed: \(result.stderr)")
        let lines = result.stdoutText.split(separator: "\n")
        try #require(lines.count == cases.count, "the oracle answered \(lines.count) of \(cases.count)")

        var accepted = 0
        var failures: [String] = []
        for (testCase, line) in zip(cases, lines) {
            let answer = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let goError = answer["error"] as? String ?? ""
            if let difference = testCase.compare(goError: goError, matches: answer["matches"] as? [Any] ?? [],
                                                 expansions: answer["expansions"] as? [String] ?? [],
                                                 replaced: answer["replaced"] as? [String] ?? []) {
                failures.append("\(testCase.pattern.debugDescription) (\(testCase.semantics)): \(difference)")
            }
            if goError.isEmpty { accepted += 1 }
        }
        print("relabel oracle: \(cases.count - failures.count) passed, \(failures.count) failed "
              + "(seed \(seed); Go accepted \(accepted))")
        #expect(failures.isEmpty, "\(failures.count) differences from Go:\n\(failures.prefix(30).joined(separator: "\n"))")
        // The grammar must reach both sides of the line.
        #expect(accepted > count / 4 && accepted < count * 9 / 10, "Go accepted \(accepted) of \(count)")
    }

    private static func findGo() -> String? {
        for path in ["/usr/bin/go", "/usr/lib/go/bin/go", "/usr/local/go/bin/go"]
        where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        return nil
    }
}

/// One pattern, its anchoring and the values to match.
private struct OracleCase {
    /// Expanded on every match: numbered, braced, named (both names the grammar
    /// uses), a name that runs on, and `$$`.
    static let template = "$0|$1|${2}|$n|${m1}|$1x|$$|$"

    var pattern: String
    var semantics: RelabelSemantics
    var values: [String]

    /// RE2 counts a `{0}` into the limit of nested repeats, Go stops there (so Go
    /// accepts, or finds another error further on): only where a `{0}` stands beside
    /// the grammar's 1000-fold repeats.
    private func isZeroRepeatDivergence(_ error: RelabelRegex.CompileError) -> Bool {
        error.message.hasPrefix("error parsing regexp: invalid repeat count")
            && (pattern.contains("{0}") || pattern.contains("{0,0}")) && pattern.contains("1000}")
    }

    /// What differs from Go's answer, or nil.
    func compare(goError: String, matches: [Any], expansions: [String], replaced: [String]) -> String? {
        let regex: RelabelRegex
        do {
            regex = try RelabelRegex(pattern, semantics: semantics)
        } catch {
            if goError.isEmpty {
                // RE2's memory budget: refused at load, said so (docs/ARCHITECTURE.md).
                if error.message.hasPrefix("regex too large") { return nil }
                if isZeroRepeatDivergence(error) { return nil }
                return "refused (\(error.message)), Go accepts"
            }
            // Go 1.22 reads `(?<` as a named group, so `(?<=a)` became an invalid
            // named capture; Debian's Go 1.19 still calls it unsupported Perl syntax.
            if goError == "error parsing regexp: invalid or unsupported Perl syntax: `(?<`",
               error.message.hasPrefix("error parsing regexp: invalid named capture: `(?<") {
                return nil
            }
            if isZeroRepeatDivergence(error) { return nil }
            // Go 1.19 reports a size it cannot afford as an internal error; later Go
            // reports the repeat count, as here.
            if goError.hasPrefix("error parsing regexp: regexp/syntax: internal error") { return nil }
            return error.message == goError ? nil : "refused as \(error.message.debugDescription), Go: \(goError.debugDescription)"
        }
        guard goError.isEmpty else { return "accepted, Go refuses: \(goError)" }
        for (index, value) in values.enumerated() {
            let subject = Array(value.utf8)
            let expected = (matches[index] as? [Int])
            let found = regex.match(subject)
            guard found == expected else {
                return "on \(value.debugDescription): \(found.map { "\($0)" } ?? "no match"), Go: \(expected.map { "\($0)" } ?? "no match")"
            }
            guard regex.matches(subject) == (expected != nil) else {
                return "on \(value.debugDescription): matches() says \(regex.matches(subject)), Go: \(expected != nil)"
            }
            if let found {
                let expansion = String(decoding: regex.expand(Array(Self.template.utf8), subject: subject, match: found),
                                       as: UTF8.self)
                guard expansion == expansions[index] else {
                    return "on \(value.debugDescription): expands to \(expansion.debugDescription), Go: \(expansions[index].debugDescription)"
                }
            }
            let replacement = String(decoding: regex.replaceAll(subject, with: Array(Self.template.utf8)), as: UTF8.self)
            guard replacement == replaced[index] else {
                return "on \(value.debugDescription): replaces to \(replacement.debugDescription), Go: \(replaced[index].debugDescription)"
            }
        }
        return nil
    }
}

/// Go regexp syntax, drawn at random: mostly valid, with the constructs Go refuses
/// (and other engines take) mixed in.
struct PatternGrammar {
    private var random: SplitMix64

    init(seed: UInt64) {
        random = SplitMix64(seed: seed)
    }

    private mutating func below(_ bound: Int) -> Int { random.below(bound) }

    private mutating func pick<T>(_ choices: [T]) -> T { random.pick(choices) }

    private static let literals = [
        "a", "b", "x", "y", "_", "1", "é", "ſ", "s", "S", "k", "K", "\u{212A}", "Σ", "σ", "ς", "-", "/", " ", "Ω", "ω",
        "\u{2126}", "İ", "ı", "i", "ǅ", "µ", "μ",
    ]
    private static let escapes = [
        "\\.", "\\-", "\\$", "\\\\", "\\x41", "\\x{e9}", "\\x{17F}", "\\141", "\\0", "\\01", "\\v", "\\t", "\\n", "\\f",
        "\\r", "\\a", "\\Q.*\\E", "\\Qa|b\\E", "\\pL", "\\p{Greek}", "\\p{^Greek}", "\\PL", "\\pN", "\\p{Lu}", "\\p{Ll}",
        "\\p{Latin}", "\\P{Latin}", "\\p{Any}", "\\d", "\\D", "\\w", "\\W", "\\s", "\\S", "\\b", "\\B", "\\A", "\\z", "^",
        "$", ".",
    ]
    private static let classes = [
        "[a-c]", "[^x]", "[[:alpha:]]", "[[:upper:]]", "[[:lower:]]", "[[:^digit:]]", "[[:word:]]", "[[:space:]]",
        "[]a]", "[^]a]", "[\\d_]", "[é-ſ]", "[\\x{100}-\\x{17F}]", "[^\\n]", "[a-]", "[-a]", "[\\pL\\d]", "[^\\PL]",
        "[\\Q]\\E]", "[[]", "[.]", "[\\s\\S]", "[k]", "[^k]",
    ]
    /// What Go refuses (most of it some other engine takes).
    private static let refused = [
        "\\C", "\\Z", "\\8", "\\1", "(?=a)", "(?!a)", "(?<=a)", "(?P=n)", "(?P>n)", "(?#c)", "(?x)", "**", "a**",
        "a{1001}", "a{2}{3}", "\\e", "\\cA", "(?|a)", "a++", "(?>a)", "\\K", "\\h", "\\R", "\\X", "[z-a]", "[a-\\d]",
        "[[:foo:]]", "\\p{Zzzz}", "\\pZ", "(?i", ")", "(", "[", "x{2,1}", "(?P<>a)", "(?P<é>a)", "\\o{12}", "\\N{x}",
        "\\u0041", "*", "+a", "a|*", "(?U)*", "\\x{110000}", "\\x{zz}", "\\p{", "[\\p{Greek]", "(?P<n", "(?m-)",
    ]
    /// Odd but valid, or odd and refused, depending on what surrounds them.
    private static let oddities = [
        "{", "a{", "a{,3}", "a{01}", "}", "]", "a{1000000000}", "(?P<1>a)", "(?P<n1_>a)", "(?i)", "()", "(|a)", "a)|(b",
        "\\Q", "(?s)", "(?-s:.)", "x{1000}", "x{0,1000}", "(?i)Σ", "a)|\\B|(b", "\\B", ")|(", "a)||(b", "(?i{1001}",
        "(?i\\C", "(?-)", "(?i-)", "(?--i)", "(?)",
    ]
    private static let groupOpeners = ["(", "(?:", "(?P<n>", "(?P<m1>", "(?i:", "(?s:", "(?U:", "(?-s:", "(?im:", "(?P<n>"]
    private static let flags = ["(?i)", "(?s)", "(?U)", "(?m)", "(?i-s)", "(?-i)", "(?sU)"]
    private static let repeats = ["*", "+", "?", "{2}", "{1,3}", "{0,}", "*?", "+?", "??", "{2,}?", "{0}", "{1000}", "{0,2}"]

    mutating func pattern() -> String {
        if below(10) == 0 { return pick(Self.refused) + expression(depth: 2) }
        var text = expression(depth: 0)
        if below(8) == 0 { text += pick(Self.refused) }
        if below(8) == 0 { text += pick(Self.oddities) }
        return text
    }

    private mutating func expression(depth: Int) -> String {
        switch below(depth >= 3 ? 5 : 11) {
        case 0: return pick(Self.literals)
        case 1: return pick(Self.escapes)
        case 2: return pick(Self.classes)
        case 3: return pick(Self.literals) + pick(Self.literals)
        case 4: return pick(Self.literals) + pick(Self.repeats)
        case 5: return expression(depth: depth + 1) + expression(depth: depth + 1)
        case 6: return pick(Self.flags) + expression(depth: depth + 1)
        case 7: return pick(Self.groupOpeners) + expression(depth: depth + 1) + ")"
        case 8: return expression(depth: depth + 1) + "|" + expression(depth: depth + 1)
        case 9: return "(" + expression(depth: depth + 1) + ")" + pick(Self.repeats)
        default: return pick(Self.oddities) + expression(depth: depth + 1)
        }
    }

    /// Values to match: pieces of the alphabet, the pattern's own literal text (so
    /// that some values match), and the empty string.
    mutating func values(for pattern: String) -> [String] {
        let pieces = Self.literals + [".", "\n", "ab", "aaaa", "AB", "xy", "0", "a\nb", "*", "$1"]
        var values = [""]
        for _ in 0..<6 {
            var value = ""
            for _ in 0..<(1 + below(5)) { value += pick(pieces) }
            values.append(value)
        }
        let literal = pattern.unicodeScalars.filter { $0.properties.isAlphabetic || $0 == "_" || $0 == " " }
        values.append(String(String.UnicodeScalarView(literal)))
        return values
    }
}
