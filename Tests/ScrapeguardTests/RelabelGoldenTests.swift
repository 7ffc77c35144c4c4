import Foundation
@testable import GatewayCore
import MetricsFilter
import Testing
import Yams

/// Every case in Tests/Fixtures/relabel, whose expected series were stored by a real
/// Prometheus (2.42) scraping the same input with the same `metric_relabel_configs`.
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

    @Test func theFixturesAreThere() {
        #expect(Self.cases.count >= 100)
    }

    @Test(arguments: cases)
    func relabelCase(_ testCase: Case) throws {
        let path = Repository.fixtures.appendingPathComponent("relabel/\(testCase.file)").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let document = try #require(try Yams.compose(yaml: text)?.mapping)
        let expectedError = document["error"]?.string
        var reader = try YAMLConfigReader.load(file: path, text: text)
        let rules: [RelabelRule]
        do {
            let items = try reader.sequence("metric_relabel_configs") ?? []
            rules = try FilterConfiguration.relabelRules(items, file: path, path: "metric_relabel_configs")
        } catch let error as ConfigError {
            let expected = try #require(expectedError, "refused a valid config: \(error)")
            if expected.hasPrefix("error parsing regexp") {
                #expect(error.reason.hasPrefix("error parsing regexp"), "\(error)")
            } else if !expected.contains("cannot unmarshal") && !expected.contains("not found in type") {
                // Go's YAML decoder words aside, the messages are Prometheus's own.
                #expect(error.reason.contains(expected), "\(error.reason) vs \(expected)")
            }
            return
        }
        #expect(expectedError == nil, "accepted a config Prometheus refuses: \(expectedError ?? "")")
        guard expectedError == nil else { return }

        let input = document["input"]?.string ?? ""
        // FilterTests.run also filters the input at every chunk size and checks that
        // the result is the same.
        let (outputText, report) = FilterTests.run(input, FilterPolicy(relabelRules: rules))
        let output = Array(outputText.utf8)
        let produced = try Self.canonicalSeries(output)

        if let scrapeError = document["prometheus_scrape_error"]?.string {
            // Prometheus fails the whole scrape; the gateway drops only the series at
            // fault, and what it passes on is valid.
            #expect(report.seriesDropped.values.reduce(0, +) >= 1, "\(scrapeError): nothing was dropped")
            let offending = produced.filter { !$0.series.hasPrefix("{") && $0.series.contains("-") }
            #expect(offending.isEmpty)
            return
        }
        var expected = try Self.canonicalSeries(Array((document["output"]?.string ?? "").utf8))
        if let divergent = Self.divergences[testCase.file] {
            #expect(expected.contains { $0.series == divergent }, "the divergence is still there")
            expected.removeAll { $0.series == divergent }
        }
        #expect(produced.map(\.series) == expected.map(\.series),
                "\(document["description"]?.string ?? "")\nproduced:\n\(String(decoding: output, as: UTF8.self))")
        #expect(produced.map(\.value) == expected.map(\.value))
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
