import Foundation
@testable import GatewayCore
import TestSupport
import Testing
import Yams

/// The configuration files' YAML layer: libyaml's events composed into a tree, and how
/// its scalars read. Held against Yams (the Swift wrapper of the same C parser, with
/// its own composer) on every YAML file in the repository.
@Suite struct YAMLComposerTests {
    private static func compose(_ text: String) throws(YAMLCompositionError) -> YAMLNode? {
        try YAMLComposer.compose(text)
    }

    private static func refusal(_ text: String) -> YAMLCompositionError? {
        do {
            _ = try compose(text)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [
        // Only plain scalars are booleans, integers or null; a quoted one is a string.
        ("v: true", true as Bool?, nil as Int?, false), ("v: Yes", true, nil, false), ("v: OFF", false, nil, false),
        ("v: \"true\"", nil, nil, false), ("v: 'no'", nil, nil, false), ("v: !!str true", nil, nil, false),
        ("v: tRUE", nil, nil, false), ("v: 42", nil, 42, false), ("v: -7", nil, -7, false), ("v: +7", nil, 7, false),
        ("v: 0x1F", nil, 31, false), ("v: 0o17", nil, 15, false), ("v: 017", nil, 15, false), ("v: 0b101", nil, 5, false),
        ("v: 1_000", nil, 1000, false), ("v: \"42\"", nil, nil, false), ("v: 08", nil, nil, false),
        ("v: 9223372036854775807", nil, Int.max, false), ("v: 9223372036854775808", nil, nil, false),
        ("v: -9223372036854775808", nil, Int.min, false), ("v: 1e3", nil, nil, false), ("v: 12abc", nil, nil, false),
        ("v: _1", nil, nil, false), ("v: 0", nil, 0, false),
        ("v:", nil, nil, true), ("v: ~", nil, nil, true), ("v: null", nil, nil, true), ("v: NULL", nil, nil, true),
        ("v: \"\"", nil, nil, false), ("v: \"null\"", nil, nil, false),
    ])
    func scalarsReadAsYAML11PlainValues(_ text: String, _ bool: Bool?, _ int: Int?, _ null: Bool) throws {
        let value = try #require(try Self.compose(text)?["v"])
        #expect(value.bool == bool)
        #expect(value.int == int)
        #expect(value.isNull == null)
    }

    /// The relabel `modulus` is a uint64 in Prometheus: yaml.v2 reads `010` as 8.
    @Test(arguments: [
        ("010", 8 as UInt64?), ("0x10", 16), ("1_000", 1000), ("+5", 5), ("-0", 0), ("0", 0),
        ("18446744073709551615", UInt64.max), ("18446744073709551616", nil), ("-1", nil), ("\"8\"", nil),
        ("8.0", nil), ("ten", nil),
    ])
    func unsignedIntegersReadAsYAMLv2FillsAUint64(_ text: String, _ expected: UInt64?) throws {
        var reader = try YAMLConfigReader.load(file: "x.yml", text: "modulus: \(text)\n")
        #expect(try reader.unsignedInt("modulus") == expected)
    }

    @Test func aDuplicateKeyIsRefusedWithItsPath() {
        #expect(Self.refusal("a: 1\na: 2\n") == YAMLCompositionError(kind: .duplicateKey, path: "a", reason: "duplicate key"))
        #expect(Self.refusal("a:\n  b: 1\n  c: 2\n  b: 3\n")?.path == "a.b")
        #expect(Self.refusal("l:\n  - x: 1\n  - x: 1\n    y: 2\n    x: 3\n")?.path == "l[1].x")
        #expect(Self.refusal("{a: 1, \"a\": 2}")?.kind == .duplicateKey)
        // The same key in two mappings is no duplicate.
        #expect(Self.refusal("a: {k: 1}\nb: {k: 1}\n") == nil)
    }

    @Test func aKeyThatIsNotAStringIsRefused() {
        #expect(Self.refusal("a:\n  [x, y]: 1\n") == YAMLCompositionError(kind: .nonStringKey, path: "a", reason: "keys must be strings"))
        #expect(Self.refusal("? {k: v}\n: 1\n")?.kind == .nonStringKey)
    }

    @Test func aliasesRepeatTheirAnchoredNode() throws {
        let root = try #require(try Self.compose("base: &b {x: 1, y: [a, b]}\ncopy: *b\nname: &n hello\nagain: *n\n"))
        #expect(root["copy"]?["x"]?.int == 1)
        #expect(root["copy"]?["y"]?.sequence?.compactMap(\.string) == ["a", "b"])
        #expect(root["again"]?.string == "hello")
        #expect(Self.refusal("a: *nowhere\n") == YAMLCompositionError(
            kind: .structure, path: "a", reason: "alias *nowhere names no anchor defined before it"))
        // A merge key is an ordinary key here: the strict reader refuses it as unknown.
        let merged = try #require(try Self.compose("base: &b {x: 1}\nother:\n  <<: *b\n"))
        #expect(merged["other"]?.mapping?.map(\.key) == ["<<"])
    }

    @Test func oneDocumentAtMostAndBoundedNesting() throws {
        #expect(try Self.compose("") == nil)
        #expect(try Self.compose("# only a comment\n") == nil)
        #expect(Self.refusal("a: 1\n---\nb: 2\n")?.kind == .structure)
        let deep = String(repeating: "[", count: YAMLComposer.maximumDepth + 1) + String(repeating: "]", count: YAMLComposer.maximumDepth + 1)
        #expect(Self.refusal(deep)?.reason == "nested deeper than \(YAMLComposer.maximumDepth) levels")
        let allowed = String(repeating: "[", count: YAMLComposer.maximumDepth) + String(repeating: "]", count: YAMLComposer.maximumDepth)
        #expect(Self.refusal(allowed) == nil)
    }

    @Test func libyamlsSyntaxErrorsSayWhere() {
        let error = Self.refusal("a: [1, 2\nb: 3\n")
        #expect(error?.kind == .syntax)
        #expect(error?.reason.contains("line ") == true && error?.reason.contains("column ") == true, "\(String(describing: error))")
        #expect(Self.refusal("a: b: c\n")?.kind == .syntax)
        // A control character: libyaml's reader gives an offset, not a mark.
        let control = Self.refusal("a: 1\nb: 2\nc: x\u{1}y\n")
        #expect(control?.kind == .syntax && control?.reason.contains("at line 3, column 5") == true,
                "\(String(describing: control))")
        #expect(Self.refusal("a: 1\n---\nb: 2\n")?.reason == "a second YAML document at line 2: the file must hold one")
        #expect(Self.refusal("\tkey: 1\n")?.kind == .syntax)
    }

    @Test func theReaderReportsEachRefusalAsAConfigError() {
        func refusal(_ text: String) -> ConfigError? {
            do {
                _ = try YAMLConfigReader.load(file: "x.yml", text: text)
                return nil
            } catch {
                return error as? ConfigError
            }
        }
        #expect(refusal("tls_server_config:\n  cert_file: a\n  cert_file: b\n")
            == ConfigError(.duplicateKey, file: "x.yml", key: "tls_server_config.cert_file", reason: "duplicate key"))
        #expect(refusal("a: [1\n")?.code == .syntax)
        #expect(refusal("a: [1\n")?.reason.hasPrefix("invalid YAML: ") == true)
        #expect(refusal("[1, 2]\n") == ConfigError(.wrongType, file: "x.yml", key: "", reason: "must be a mapping"))
        #expect(refusal("a: 1\n---\n")?.code == .syntax)
    }

    /// Every YAML file in the repository (configs, fixtures, manifests), composed here and
    /// by Yams: the same tree, the same scalars, the same plain-or-not for each.
    @Test func everyRepositoryYAMLFileComposesAsYamsComposesIt() throws {
        let roots = ["Tests/Fixtures", "deploy"].map { Repository.root.appendingPathComponent($0) }
        var compared = 0
        for root in roots {
            let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)?
                .compactMap { $0 as? URL }.filter { ["yml", "yaml"].contains($0.pathExtension) } ?? []
            for file in files {
                let text = try String(contentsOf: file, encoding: .utf8)
                let reference: Node?
                do {
                    reference = try Yams.compose(yaml: text)
                } catch {
                    // Yams refuses it (a duplicate key, a syntax error): so must we.
                    #expect(Self.refusal(text) != nil, "\(file.path): Yams refuses it (\(error)), we do not")
                    continue
                }
                let ours = try Self.compose(text)
                #expect(Self.same(ours, reference), "\(file.path)")
                compared += 1
            }
        }
        #expect(compared > 200)
    }

    /// Generated documents (`YAMLGrammar`, fixed seed), composed here and by Yams:
    /// both refuse, or both give the same tree.
    @Test func generatedDocumentsComposeAsYamsComposesThem() throws {
        var grammar = YAMLGrammar(seed: 1)
        var accepted = 0, refused = 0
        for _ in 0..<3000 {
            let text = grammar.document()
            switch (Self.result(text), Self.yamsResult(text)) {
            case (.success(let ours), .success(let theirs)):
                #expect(Self.same(ours, theirs), "\(text)")
                accepted += 1
            case (.failure, .failure):
                refused += 1
            case (.success, .failure(let error)):
                Issue.record("Yams refuses (\(error)), we do not:\n\(text)")
            case (.failure(let error), .success):
                Issue.record("we refuse (\(error.reason)), Yams does not:\n\(text)")
            }
        }
        // Both kinds are exercised.
        #expect(accepted > 1000 && refused > 50, "accepted \(accepted), refused \(refused)")
    }

    private static func yamsResult(_ text: String) -> Result<Node?, any Error> {
        do {
            return .success(try Yams.compose(yaml: text))
        } catch {
            return .failure(error)
        }
    }

    private static func result(_ text: String) -> Result<YAMLNode?, YAMLCompositionError> {
        do {
            return .success(try compose(text))
        } catch {
            return .failure(error)
        }
    }

    private static func same(_ ours: YAMLNode?, _ reference: Node?) -> Bool {
        switch (ours, reference) {
        case (nil, nil):
            return true
        case (.scalar(let scalar)?, .scalar(let other)?):
            return scalar.string == other.string && scalar.isPlain == (other.style == .plain)
        case (.sequence(let items)?, .sequence(let others)?):
            return items.count == others.count && zip(items, others).allSatisfy { same($0, $1) }
        case (.mapping(let entries)?, .mapping(let others)?):
            return entries.count == others.count && zip(entries, others).allSatisfy { entry, other in
                other.key.scalar?.string == entry.key && same(entry.value, other.value)
            }
        default:
            return false
        }
    }
}
