import ArgumentParser
import GatewayCore
import MetricsFilter

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a saved scrape through a policy: exposition on stdin, filtered exposition on
/// stdout, a summary of what was dropped and changed on stderr.
struct FilterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "filter",
        abstract: "Filter an exposition from stdin to stdout with the policy of a scrapeguard.yml."
    )

    @Option(name: .customLong("config.file"), help: "scrapeguard.yml with the filter policy.")
    var configFile: String

    @Option(help: "The input's format: text (0.0.4), openmetrics (1.0) or protobuf (delimited MetricFamily messages).")
    var format: String = "text"

    @Option(help: """
        How names that are not legacy names are written, as a scraper's Accept would say:         allow-utf-8 (quoted, as they are), underscores, dots or values.
        """)
    var escaping: String = NameEscaping.unspecified.rawValue

    func run() throws {
        let filterFormat: ExpositionFormat?
        if format == "protobuf" {
            filterFormat = nil
        } else {
            guard let exposition = ExpositionFormat(rawValue: format) else {
                throw ValidationError("--format: text, openmetrics or protobuf")
            }
            filterFormat = exposition
        }
        guard let names = NameEscaping(parameter: escaping) else {
            throw ValidationError("--escaping: allow-utf-8, underscores, dots or values")
        }
        let configuration: GatewayConfiguration
        do {
            configuration = try GatewayConfiguration.load(file: configFile)
        } catch {
            printError("filter: \(error)")
            throw ExitCode.failure
        }
        let filter: any ScrapeFilterEngine = filterFormat.map {
            StreamingFilter(policy: configuration.filter, format: $0, names: names)
        } ?? ProtobufFilter(policy: configuration.filter, names: names)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var output: [UInt8] = []
        while true {
            let count = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            chunk.withUnsafeBytes { filter.process(UnsafeRawBufferPointer(rebasing: $0[0..<count]), into: &output) }
            writeAll(output, to: STDOUT_FILENO)
            output.removeAll(keepingCapacity: true)
        }
        let report = filter.finish(into: &output)
        writeAll(output, to: STDOUT_FILENO)
        printError(Self.summary(report))
        if report.failed {
            printError("filter: the policy fails this scrape (invalid_lines: fail_scrape)")
            throw ExitCode.failure
        }
    }

    static func summary(_ report: FilterReport) -> String {
        var lines = ["samples in: \(report.samplesIn), out: \(report.samplesOut), rewritten: \(report.samplesRewritten)"]
        for (key, count) in report.seriesDroppedByMetric.sorted(by: { ($0.key.reason, $0.key.metric) < ($1.key.reason, $1.key.metric) }) {
            lines.append("dropped \(count) series of \(key.metric): \(key.reason)")
        }
        for (key, count) in report.piiActions.sorted(by: { ($0.key.rule, $0.key.action) < ($1.key.rule, $1.key.action) }) {
            lines.append("pii rule \(key.rule): \(key.action) \(count) value(s)")
        }
        for (reason, count) in report.linesRejected.sorted(by: { $0.key < $1.key }) {
            lines.append("rejected \(count) line(s): \(reason)")
        }
        return lines.joined(separator: "\n")
    }
}
