import Foundation
@testable import GatewayCore
import MetricsFilter
import Testing
import TestSupport
import Yams

/// Every case in Tests/Fixtures/relabel, whose expected series were stored by a real
/// Prometheus (2.42) scraping the same input with the same `metric_relabel_configs`,
/// run under `relabel_semantics: prometheus2`. Under the default, `prometheus3`,
/// exactly the cases in `prometheus3Changes` come out otherwise, each for the reason
/// given there.
@Suite struct RelabelGoldenTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var file: String
        var testDescription: String { file }
    }

    static let cases: [Case] = {
        let folder = Repository.fixtures.appendingPathComponent("relabel").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
            .filter { $0.hasSuffix(".yml") }.sorted().map { Case(file: $0) }
    }()

    /// Where the gateway deliberately differs from what Prometheus stores, and why.
    static let divergences: [String: String] = [
        // Prometheus stores a `_bucket` sample whose `le` a rule dropped; a text
        // exposition with such a line is invalid (promtool refuses it), and the
        // gateway never writes an invalid exposition: the bucket is dropped.
        "histogram_labeldrop_le_collapses_buckets.yml": "rpc_latency_seconds_bucket{method=\"get\"}",
    ]

    /// The cases Prometheus 3 decides otherwise than the 2.42 that stored them: why,
    /// and the series it gives (nil: a config 2.42 refused that 3 accepts).
    static let prometheus3Changes: [String: (why: String, series: [String]?)] = [
        // Prometheus 3 anchors `^(?s:…)$`: `.` matches the newline.
        "keep_dot_star_drops_value_with_newline.yml": ("`.*` keeps a value with a newline",
                                                       ["m{a=\"x\ny\"}", "n{a=\"xy\"}", "o{}"]),
        "replace_dot_does_not_match_newline.yml": ("`(.*)` matches a value with a newline and copies it", [
            "m{a=\"x\ny\",copy=\"x\ny\",copy_s=\"x\ny\"}", "n{a=\"xy\",copy=\"xy\",copy_s=\"xy\"}",
        ]),
        // Under `utf8` name validation any non-empty UTF-8 is a label name.
        "invalid_hashmod_templated_target_label.yml": ("`h_$1` is a valid hashmod target", nil),
        "invalid_labelmap_bad_replacement.yml": ("`foo-$1` is a valid labelmap replacement", nil),
        "invalid_replace_target_label_bad_name.yml": ("`foo-bar` is a valid target", nil),
        "invalid_replace_target_label_bad_template.yml": ("`${1}-x` is a valid target", nil),
        "invalid_replace_target_label_starts_with_digit.yml": ("`1abc` is a valid target", nil),
        "invalid_source_label_bad_name.yml": ("`foo-bar` is a valid source label", nil),
        // Prometheus 3 writes `1abc="v"` and `a-b="v"`. For a scraper that did not ask
        // for UTF-8 names (as here) the gateway drops those two series as
        // `invalid_name`: a legacy scraper would fail the whole scrape on them. One
        // that asked keeps them (`utf8TargetsReachAScraperThatAskedForUTF8`).
        "replace_templated_target_invalid_name_skipped.yml": ("the UTF-8 targets are set, those series dropped",
                                                              ["m{a=\"abc\",abc=\"v\"}", "p{}"]),
    ]

    @Test func theFixturesAreThere() {
        #expect(Self.cases.count >= 100)
    }

    @Test(arguments: cases)
    func relabelCase(_ testCase: Case) throws {
        let (matches, detail) = try Self.run(testCase, semantics: .prometheus2)
        #expect(matches, "\(detail)")
    }

    /// Under Prometheus 3 semantics every case but the listed ones still agrees with
    /// what 2.42 stored, and each listed one comes out as Prometheus 3 has it.
    @Test(arguments: cases)
    func relabelCaseUnderPrometheus3(_ testCase: Case) throws {
        guard let change = Self.prometheus3Changes[testCase.file] else {
            let (matches, detail) = try Self.run(testCase, semantics: .prometheus3)
            #expect(matches, "\(detail)")
            return
        }
        switch try Self.outcome(testCase, semantics: .prometheus3).result {
        case .refused(let error):
            Issue.record("refused (\(error)), but \(change.why)")
        case .filtered(let produced, _):
            if let series = change.series {
                #expect(produced.map(\.series) == series, "\(change.why)")
            }
        }
    }

    /// Under Prometheus 3 semantics, for a scraper that asked for `allow-utf-8`, the
    /// targets that are not legacy names are set and written quoted, as Prometheus 3
    /// stores them.
    @Test func utf8TargetsReachAScraperThatAskedForUTF8() throws {
        let testCase = try #require(Self.cases.first { $0.file == "replace_templated_target_invalid_name_skipped.yml" })
        let outcome = try Self.outcome(testCase, semantics: .prometheus3, names: .allowUTF8)
        guard case .filtered(let produced, _) = outcome.result else {
            Issue.record("refused")
            return
        }
        #expect(produced.map(\.series) == ["m{a=\"abc\",abc=\"v\"}", "n{1abc=\"v\",a=\"1abc\"}",
                                           "o{a=\"a-b\",a-b=\"v\"}", "p{}"])
    }

    struct Outcome {
        enum Result {
            case refused(ConfigError)
            case filtered([Series], FilterReport)
        }

        var document: Node.Mapping
        var result: Result
    }

    /// What the filter does with a case under `semantics`: refuses its rules, or
    /// passes on these series.
    static func outcome(_ testCase: Case, semantics: RelabelSemantics,
                        names: NameEscaping = .unspecified) throws -> Outcome {
        let path = Repository.fixtures.appendingPathComponent("relabel/\(testCase.file)").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let document = try #require(try Yams.compose(yaml: text)?.mapping)
        var reader = try YAMLConfigReader.load(file: path, text: text)
        let rules: [RelabelRule]
        do {
            let items = try reader.sequence("metric_relabel_configs") ?? []
            rules = try FilterConfiguration.relabelRules(items, file: path, path: "metric_relabel_configs",
                                                         semantics: semantics)
        } catch let error as ConfigError {
            return Outcome(document: document, result: .refused(error))
        }
        // FilterTests.run also filters the input at every chunk size and checks that
        // the result is the same.
        let (outputText, report) = FilterHarness.run(document["input"]?.string ?? "", FilterPolicy(relabelRules: rules),
                                                     names: names)
        return Outcome(document: document, result: .filtered(try canonicalSeries(Array(outputText.utf8)), report))
    }

    /// Whether the filter under `semantics` gives what the fixture stored, and what
    /// differed.
    static func run(_ testCase: Case, semantics: RelabelSemantics) throws -> (Bool, String) {
        let outcome = try outcome(testCase, semantics: semantics)
        let document = outcome.document
        let expectedError = document["error"]?.string
        switch outcome.result {
        case .refused(let error):
            guard let expected = expectedError else { return (false, "refused a valid config: \(error)") }
            if expected.hasPrefix("error parsing regexp") {
                return (error.reason.hasPrefix("error parsing regexp"), "\(error)")
            } else if !expected.contains("cannot unmarshal") && !expected.contains("not found in type") {
                // Go's YAML decoder words aside, the messages are Prometheus's own.
                return (error.reason.contains(expected), "\(error.reason) vs \(expected)")
            }
            return (true, "")
        case .filtered(let produced, let report):
            if let expectedError { return (false, "accepted a config Prometheus refuses: \(expectedError)") }
            if let scrapeError = document["prometheus_scrape_error"]?.string {
                // Prometheus fails the whole scrape; the gateway drops only the series
                // at fault, and what it passes on is valid.
                let offending = produced.filter { !$0.series.hasPrefix("{") && $0.series.contains("-") }
                return (report.seriesDropped.values.reduce(0, +) >= 1 && offending.isEmpty,
                        "\(scrapeError): dropped \(report.seriesDropped), passed on \(offending)")
            }
            var expected = try Self.canonicalSeries(Array((document["output"]?.string ?? "").utf8))
            if let divergent = Self.divergences[testCase.file] {
                guard expected.contains(where: { $0.series == divergent }) else { return (false, "the divergence is gone") }
                expected.removeAll { $0.series == divergent }
            }
            return (produced == expected, """
                \(document["description"]?.string ?? "")
                expected: \(expected)
                produced: \(produced)
                """)
        }
    }

    struct Series: Equatable {
        var series: String
        var value: String
    }

    /// `name{a="1",b="2"}` with labels sorted and empty values left out, and the value
    /// as a number, sorted: how Prometheus's stored series compare.
    static func canonicalSeries(_ text: [UInt8]) throws -> [Series] {
        var result: [Series] = []
        for line in text.split(separator: 0x0A) {
            guard case .success(.sample(let sample)) = ExpositionParser.parse(Array(line), format: .text) else {
                if case .failure(let error) = ExpositionParser.parse(Array(line), format: .text) {
                    Issue.record("unparseable output line \(String(decoding: line, as: UTF8.self)): \(error.reason)")
                }
                continue
            }
            let set = LabelSet(sample: sample)
            let labels = set.labels.filter { $0.name != LabelSet.metricNameLabel }
                .map { "\(String(decoding: $0.name, as: UTF8.self))=\"\(String(decoding: $0.value, as: UTF8.self))\"" }
            let name = String(decoding: set.metricName ?? [], as: UTF8.self)
            let value = Double(String(decoding: sample.value, as: UTF8.self)).map { "\($0)" } ?? String(decoding: sample.value, as: UTF8.self)
            result.append(Series(series: "\(name){\(labels.joined(separator: ","))}", value: value))
        }
        return result.sorted { $0.series < $1.series }
    }
}
