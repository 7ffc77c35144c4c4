import Foundation
import MetricsFilter
import Testing
import TestSupport

/// Tests/Fixtures/openmetrics-structure: OpenMetrics bodies that break a rule about
/// the exposition as a whole (a family claiming a sample name another family claims;
/// a histogram with negative bucket bounds and a `_sum`; a gauge histogram with a
/// negative `_gsum` and no negative bound), and valid neighbours of them. The filter
/// with no policy gives exactly `expected.txt`: the least it can drop to be valid.
/// (CorpusTests runs the same folder through prometheus_client's strict parser.)
@Suite struct OpenMetricsStructureTests {
    static let cases: [String] = {
        let folder = Repository.fixtures.appendingPathComponent("openmetrics-structure").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
            .filter { FileManager.default.fileExists(atPath: "\(folder)/\($0)/input.txt") }.sorted()
    }()

    @Test func theCasesAreThere() {
        for name in ["bad_clashing_names_2", "bad_grouping_or_ordering_3", "bad_histograms_3", "bad_histograms_7"] {
            #expect(Self.cases.contains(name))
        }
    }

    @Test(arguments: cases)
    func comesOutAsExpected(_ name: String) throws {
        let folder = Repository.fixtures.appendingPathComponent("openmetrics-structure/\(name)")
        let input = try String(contentsOf: folder.appendingPathComponent("input.txt"), encoding: .utf8)
        let expected = try String(contentsOf: folder.appendingPathComponent("expected.txt"), encoding: .utf8)
        let (output, report) = FilterHarness.run(input, FilterPolicy(), format: .openMetrics)
        #expect(output == expected)
        if input != expected {
            let dropped = report.seriesDropped.values.reduce(0, +) + report.linesRejected.values.reduce(0, +)
            #expect(dropped > 0, "what was left out is counted")
        }
    }
}
