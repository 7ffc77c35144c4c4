import Foundation
import Testing

/// The OpenMetrics parser suite in ../shared/corpus, through the real `scrapeguard
/// filter`, checked by prometheus_client's strict OpenMetrics parser and promtool:
/// every case comes out parseable, and every valid case keeps its samples.
@Suite struct CorpusTests {
    @Test func openMetricsCorpusThroughTheIdentityPolicy() async throws {
        let corpus = Repository.root.appendingPathComponent("../shared/corpus/openmetrics").standardizedFileURL.path
        guard FileManager.default.fileExists(atPath: corpus) else {
            Issue.record("the corpus is missing at \(corpus)")
            return
        }
        try await Self.check(corpus: corpus)
    }

    /// The structure cases (family name clashes, negative-bucket sums): every output
    /// parses with the strict parser, every valid case keeps its samples.
    @Test func openMetricsStructureCasesComeOutValid() async throws {
        try await Self.check(corpus: Repository.fixtures.appendingPathComponent("openmetrics-structure").path)
    }

    /// Tests/Support/corpus_check.py over a corpus folder: no check may fail.
    private static func check(corpus: String) async throws {
        let python = Repository.root.appendingPathComponent(".venv-test/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            Issue.record("prometheus_client is not installed: run `make test-deps` (.venv-test)")
            return
        }
        let result = try await ProcessRunner.run([
            python, Repository.root.appendingPathComponent("Tests/Support/corpus_check.py").path,
            "--binary", Repository.binary, "--corpus", corpus,
        ], timeout: 600)
        let summary = result.stdoutText.split(separator: "\n").last { $0.hasPrefix("corpus:") } ?? ""
        #expect(result.status == 0, "\(result.stdoutText.suffix(4000))\(result.stderr.suffix(2000))")
        #expect(summary.hasSuffix(" 0 failed") && !summary.hasPrefix("corpus: 0 passed"), "\(summary)")
    }
}
