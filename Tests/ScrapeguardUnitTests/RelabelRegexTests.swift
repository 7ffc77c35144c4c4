@testable import MetricsFilter
import Testing
import TestSupport

/// Relabel regexes decide as Prometheus's do: Go's `regexp/syntax` says what is
/// valid (https://pkg.go.dev/regexp/syntax, "Syntax"), RE2 matches in linear time.
/// Each case states the Go behaviour it pins; the verdicts were read off Go 1.19's
/// regexp and Prometheus 2.42's promtool (RelabelOracleTests and
/// e2e/relabel_differential.py check the same on generated patterns).
@Suite struct RelabelRegexTests {
    struct Refusal: Sendable, CustomTestStringConvertible {
        var pattern: String
        var message: String
        var why: String
        var testDescription: String { pattern }
    }

    /// Accepted by PCRE2 once, refused by Go, so by Prometheus: the message is Go's.
    static let refusals: [Refusal] = [
        .init(pattern: "(?P<n>a+)b(?P=n)", message: "error parsing regexp: invalid or unsupported Perl syntax: `(?P`",
              why: "Go has no backreferences: `(?P=name)` is no flag group"),
        .init(pattern: "(*ACCEPT)a", message: "error parsing regexp: missing argument to repetition operator: `*`",
              why: "PCRE verbs are not syntax: `(` then a `*` with nothing to repeat"),
        .init(pattern: "(*FAIL)|a", message: "error parsing regexp: missing argument to repetition operator: `*`",
              why: "the same"),
        .init(pattern: "(*COMMIT)a", message: "error parsing regexp: missing argument to repetition operator: `*`",
              why: "the same"),
        .init(pattern: "(?x)a b", message: "error parsing regexp: invalid or unsupported Perl syntax: `(?x`",
              why: "the flags are i, m, s and U only"),
        .init(pattern: "a(?#c)b", message: "error parsing regexp: invalid or unsupported Perl syntax: `(?#`",
              why: "no comment groups"),
        .init(pattern: "a{2,1001}", message: "error parsing regexp: invalid repeat count: `{2,1001}`",
              why: "repeat counts are at most 1000"),
        .init(pattern: "a{1001}", message: "error parsing regexp: invalid repeat count: `{1001}`", why: "the same"),
        .init(pattern: "(a{100}){11}", message: "error parsing regexp: invalid repeat count: `{11}`",
              why: "nested repeats multiply, and the product is at most 1000 too"),
        .init(pattern: "\\C", message: "error parsing regexp: invalid escape sequence: `\\C`",
              why: "RE2 C++ takes \\C as any byte; Go refuses it"),
        .init(pattern: "(?J)a", message: "error parsing regexp: invalid or unsupported Perl syntax: `(?J`",
              why: "no J flag"),
        .init(pattern: "(?=a)", message: "error parsing regexp: invalid or unsupported Perl syntax: `(?=`",
              why: "no lookaround"),
        .init(pattern: "\\1", message: "error parsing regexp: invalid escape sequence: `\\1`",
              why: "a single digit is a backreference, not supported"),
        .init(pattern: "\\Z", message: "error parsing regexp: invalid escape sequence: `\\Z`", why: "only \\z"),
        .init(pattern: "a**", message: "error parsing regexp: invalid nested repetition operator: `**`",
              why: "Go refuses a repeat of a repeat"),
        .init(pattern: "(?P<>x)", message: "error parsing regexp: invalid named capture: `(?P<>`",
              why: "a name is one or more of [0-9A-Za-z_]"),
        .init(pattern: "(?P<é>x)", message: "error parsing regexp: invalid named capture: `(?P<é>`",
              why: "names are ASCII word characters only"),
        .init(pattern: "[z-a]", message: "error parsing regexp: invalid character class range: `z-a`",
              why: "ranges go upwards"),
        .init(pattern: "(", message: "error parsing regexp: missing closing ): `^(?s:()$`",
              why: "the wrapper's `)` closes the pattern's group"),
        .init(pattern: "(?i{1001}", message: "error parsing regexp: invalid or unsupported Perl syntax: `(?i{`",
              why: "a flag group names the character that ends it"),
        .init(pattern: "(?i-)", message: "error parsing regexp: invalid or unsupported Perl syntax: `(?i-)`",
              why: "a `-` needs a flag after it"),
        .init(pattern: "a)\\C", message: "error parsing regexp: invalid escape sequence: `\\C`",
              why: "the text before the scan's refusal compiles; the refusal stands"),
        .init(pattern: "\\8\\C", message: "error parsing regexp: invalid escape sequence: `\\8`",
              why: "Go reports the leftmost error"),
        .init(pattern: String(repeating: "(", count: 999),
              message: "error parsing regexp: missing closing ): `^(?s:\(String(repeating: "(", count: 999)))$`",
              why: "unclosed groups are missing a `)` before they are too deep: Go measures a group once it closes"),
    ]

    /// Go refuses a parse tree higher than 1000: with the anchors' level and the
    /// content's, 999 nested captures are one too many, 998 are not.
    @Test func nestingAsDeepAsGoAllows() throws {
        let deepest = String(repeating: "(", count: 998) + "x" + String(repeating: ")", count: 998)
        #expect(try RelabelRegex(deepest).matches(Array("x".utf8)))
        let tooDeep = String(repeating: "(", count: 999) + "x" + String(repeating: ")", count: 999)
        #expect(throws: RelabelRegex.CompileError.self) { try RelabelRegex(tooDeep) }
        do { _ = try RelabelRegex(tooDeep) } catch {
            #expect(error.message.hasPrefix("error parsing regexp: expression nests too deeply: `^(?s:(((("))
        }
    }

    @Test(arguments: refusals)
    func refusedAsGoRefusesIt(_ refusal: Refusal) {
        #expect(throws: RelabelRegex.CompileError.self, "\(refusal.why)") { try RelabelRegex(refusal.pattern) }
        do {
            _ = try RelabelRegex(refusal.pattern)
        } catch {
            #expect(error.message == refusal.message, "\(refusal.why)")
        }
    }

    struct Verdicts: Sendable, CustomTestStringConvertible {
        var pattern: String
        var semantics: RelabelSemantics = .prometheus3
        var matching: [String]
        var notMatching: [String]
        var why: String
        var testDescription: String { "\(pattern) (\(semantics))" }
    }

    static let verdicts: [Verdicts] = [
        .init(pattern: "\\141b", matching: ["ab"], notMatching: ["\\141b", "141b"],
              why: "octal escapes: \\141 is `a` (PCRE2 refused it)"),
        .init(pattern: "(?P<n>a)b|(?P<n>a)", matching: ["ab", "a"], notMatching: ["b"],
              why: "Go allows a group name twice (RE2 C++ and PCRE2 refuse it)"),
        .init(pattern: "(?<n>a)b", matching: ["ab"], notMatching: ["a"],
              why: "`(?<name>re)` is Go 1.22+ syntax, which Prometheus 3 is built with"),
        .init(pattern: "x\\sy", matching: ["x y", "x\ty", "x\ny", "x\u{0C}y", "x\ry"],
              notMatching: ["x\u{0B}y", "x\u{A0}y", "x\u{2028}y"],
              why: "\\s is `[\\t\\n\\f\\r ]`: no vertical tab, ASCII only"),
        .init(pattern: "x\\vy", matching: ["x\u{0B}y"], notMatching: ["x\ny", "x\u{85}y", "x\u{2028}y", "x\ry"],
              why: "\\v is the vertical tab alone (PCRE2: any vertical space)"),
        .init(pattern: "\\d+", matching: ["0123456789"], notMatching: ["٣", "１"], why: "\\d is [0-9]: ASCII only"),
        .init(pattern: "\\w+", matching: ["a_Z9"], notMatching: ["é", "ſ"], why: "\\w is [0-9A-Za-z_]: ASCII only"),
        .init(pattern: "(?i)[[:upper:]]", matching: ["A", "a", "ſ", "\u{212A}"], notMatching: ["1", "é"],
              why: "under (?i) a class takes every simple case fold: ſ folds to s, K (Kelvin) to k"),
        .init(pattern: "(?i)[[:lower:]]", matching: ["ſ", "\u{212A}", "Q"], notMatching: ["1"], why: "the same"),
        .init(pattern: "(?i)k", matching: ["k", "K", "\u{212A}"], notMatching: ["x"], why: "simple case folding orbits"),
        .init(pattern: "a.b", matching: ["a\nb", "axb"], notMatching: ["ab"],
              why: "Prometheus 3 anchors ^(?s:…)$: `.` matches a newline"),
        .init(pattern: "a.b", semantics: .prometheus2, matching: ["axb"], notMatching: ["a\nb"],
              why: "Prometheus 2 anchors ^(?:…)$: `.` stops at a newline"),
        .init(pattern: "a|b", matching: ["a", "b"], notMatching: ["ab", "xa"], why: "the anchors take the whole value"),
        .init(pattern: "a)|(b", matching: ["a", "ax", "xb", "b"], notMatching: ["x", "ba"],
              why: "the pattern is spliced into ^(?s:…)$ unparsed: `^(?s:a)|(b)$`, a prefix or a suffix"),
        .init(pattern: "\\Q.*\\E", matching: [".*"], notMatching: ["ab"], why: "\\Q…\\E is literal text"),
        .init(pattern: "\\pL+", matching: ["abcé", "Σσς"], notMatching: ["1", "_"], why: "Unicode classes"),
        .init(pattern: "(a+)+b|.+", matching: [String(repeating: "a", count: 30) + "X"], notMatching: [""],
              why: "the fail-open case: `.+` matches any value, however long the run of a's"),
        .init(pattern: "(a+)+$", matching: [String(repeating: "a", count: 5000)],
              notMatching: [String(repeating: "a", count: 5000) + "b"],
              why: "an exponential pattern for backtracking engines, linear here"),
    ]

    @Test(arguments: verdicts)
    func matchesAsGoMatches(_ verdicts: Verdicts) throws {
        let regex = try RelabelRegex(verdicts.pattern, semantics: verdicts.semantics)
        for value in verdicts.matching {
            #expect(regex.matches(Array(value.utf8)), "\(value.debugDescription): \(verdicts.why)")
            #expect(regex.match(Array(value.utf8)) != nil, "\(value.debugDescription): with groups too")
        }
        for value in verdicts.notMatching {
            #expect(!regex.matches(Array(value.utf8)), "\(value.debugDescription): \(verdicts.why)")
            #expect(regex.match(Array(value.utf8)) == nil, "\(value.debugDescription): with groups too")
        }
    }

    /// Patterns a backtracking engine takes exponential time on, as `drop` rules over
    /// 10k distinct values (the 5k kept are 1 KiB, the 5k matching ones 1 to 6 KiB,
    /// all a's or x's): every verdict right (Benchmarks/ has their timings).
    @Test(arguments: ["(a+)+$", "(x+x+)+y", "(.*a){20}"])
    func pathologicalPatternsDecideRight(_ pattern: String) throws {
        // Per pattern: a value that almost matches (kept) and one that matches.
        let kept: (Int) -> String
        let dropped: (Int) -> String
        switch pattern {
        case "(x+x+)+y":
            kept = { String(repeating: "x", count: 1000) + "-\($0)" }
            dropped = { String(repeating: "x", count: 1000 + $0) + "y" }
        case "(.*a){20}":
            kept = { String(repeating: "a", count: 19) + String(repeating: "x", count: 1000) + "-\($0)" }
            dropped = { "-\($0)" + String(repeating: "x", count: 1000) + String(repeating: "a", count: 20) }
        default:
            kept = { String(repeating: "a", count: 1000) + "-\($0)" }
            dropped = { String(repeating: "a", count: 1000 + $0) }
        }
        let rule = try RelabelRule(.init(action: "drop", sourceLabels: ["v"], regex: pattern))
        var input = ""
        for index in 0..<5000 {
            input += "m{v=\"\(kept(index))\"} 1\nm{v=\"\(dropped(index))\"} 2\n"
        }
        let (output, report) = FilterHarness.run(input, FilterPolicy(relabelRules: [rule]))
        #expect(report.seriesDropped["relabel"] == 5000)
        let expected = (0..<5000).map { "m{v=\"\(kept($0))\"} 1" }
        #expect(output.split(separator: "\n").map(String.init) == expected)
    }

    /// Go decodes a byte that is not UTF-8 as U+FFFD (`utf8.DecodeRune`: RuneError,
    /// width 1), so `.` matches it; offsets stay the value's own. (Read off Go 1.19:
    /// `^(?s:(.*))$` on FF gives [0 1 0 1]; `^(?s:a)|(.*)$` on FF FE gives [0 2 0 2].)
    @Test func bytesThatAreNotUTF8MatchAsGoMatchesThem() throws {
        #expect(try RelabelRegex("(.*)").match([0xFF]) == [0, 1, 0, 1])
        #expect(try RelabelRegex("a)|(.*").match([0xFF, 0xFE]) == [0, 2, 0, 2])
        let secret = try RelabelRegex(".*secret.*")
        #expect(secret.matches([0xFF] + Array("secret".utf8)))
        #expect(secret.matches([0xE2, 0x82] + Array("secret".utf8)), "a sequence cut short")
        #expect(secret.matches([0xED, 0xA0, 0x80] + Array("secret".utf8)), "an encoded surrogate")
        let groups = try RelabelRegex("(.)(s.*)")
        let subject: [UInt8] = [0xC0, 0x73, 0x78]  // an overlong lead byte, then "sx"
        let match = try #require(groups.match(subject))
        #expect(match == [0, 3, 0, 1, 1, 3])
        #expect(groups.expand(Array("$2".utf8), subject: subject, match: match) == Array("sx".utf8))
    }

    /// Go's `Expand`: `$name` is the first group of that name that took part.
    @Test func aRepeatedGroupNameExpandsToTheGroupThatMatched() throws {
        let regex = try RelabelRegex("(?P<n>a)b|(?P<n>c)")
        let subject = Array("c".utf8)
        let match = try #require(regex.match(subject))
        #expect(match == [0, 1, -1, -1, 0, 1])
        #expect(regex.expand(Array("<${n}>".utf8), subject: subject, match: match) == Array("<c>".utf8))
    }

    /// `$name` takes letters (category L) and decimal digits, as Go's `extract`:
    /// `$1x` is the group named `1x` (none: empty), `${1}x` group 1 then `x`.
    @Test func templateNamesEndAsGoEndsThem() throws {
        let regex = try RelabelRegex("(a)(?P<x>b)")
        let subject = Array("ab".utf8)
        let match = try #require(regex.match(subject))
        let cases: [(String, String)] = [
            ("$1x", ""), ("${1}x", "ax"), ("$2", "b"), ("$é", ""), ("$$1", "$1"), ("$", "$"), ("${1", "${1"),
            ("$01", ""), ("$0", "ab"), ("$x", "b"), ("$xé", ""),
        ]
        for (template, expected) in cases {
            let output = regex.expand(Array(template.utf8), subject: subject, match: match)
            #expect(String(decoding: output, as: UTF8.self) == expected, "\(template)")
        }
    }

    /// `labelmap` replaces every match (Go's `ReplaceAllString`), which only a
    /// pattern that splits the anchors can make more than one.
    @Test func replaceAllReplacesEachMatch() throws {
        let regex = try RelabelRegex("a)|(b")
        #expect(regex.replaceAll(Array("axb".utf8), with: Array("<$0>".utf8)) == Array("<a>x<b>".utf8))
        let plain = try RelabelRegex("meta_(.+)")
        #expect(plain.replaceAll(Array("meta_pod".utf8), with: Array("m_$1".utf8)) == Array("m_pod".utf8))
    }

    /// A pattern too large for RE2's memory budget is refused when the config is
    /// read, never half-run: no verdict can depend on memory at match time.
    @Test func aTooLargePatternIsRefusedAtLoad() {
        #expect(throws: RelabelRegex.CompileError.self) { try RelabelRegex("\\pL{1000}") }
        do { _ = try RelabelRegex("\\pL{1000}") } catch {
            #expect(error.message.hasPrefix("regex too large: it needs more than the 8 MiB"))
        }
    }

    /// The rules' label names follow the semantics: Prometheus 3 takes any UTF-8.
    @Test func prometheus3RulesMayNameUTF8Labels() throws {
        let fields = RelabelRule.Fields(action: "replace", sourceLabels: ["http.route"], targetLabel: "route.name")
        let rule = try RelabelRule(fields, semantics: .prometheus3)
        var set = LabelSet(labels: [Label("__name__", "m"), Label("http.route", "/a")])
        #expect(Relabeler(rules: [rule]).apply(&set))
        #expect(set.value(Array("route.name".utf8)) == Array("/a".utf8))
        #expect(throws: RelabelRule.Invalid.self) { try RelabelRule(fields, semantics: .prometheus2) }
    }

    /// hashmod's MD5 is OpenSSL's, checked to work when a rule is made (a FIPS-only
    /// provider refuses MD5: the rule is refused then, not run with a hash of zeros).
    @Test func hashmodsMD5Works() {
        #expect(Relabeler.md5Works)
        #expect(Array("abc".utf8).withUnsafeBufferPointer(Relabeler.md5Tail) == 0xd696_3f7d_28e1_7f72)  // md5("abc") = 9001…d6963f7d28e17f72
    }
}
