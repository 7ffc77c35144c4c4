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

    @Option(help: """
        Filter the input N times through one memo of series decisions (filter.memo_budget), \
        as N scrapes of the same series: the first pass and the later ones are timed apart on \
        stderr, with what the memo held, and the last pass is written to stdout.
        """)
    var `repeat`: Int = 1

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
        guard `repeat` >= 1 else { throw ValidationError("--repeat: at least 1") }
        if `repeat` > 1 {
            try runRepeated(policy: configuration.filter, format: filterFormat, names: names)
            return
        }
        let filter = Self.makeFilter(policy: configuration.filter, format: filterFormat, names: names)
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

    /// `--repeat`: the whole input read first, then filtered `repeat` times in 64 KiB
    /// chunks through one memo, each pass timed; every pass must give the first pass's
    /// output and report.
    private func runRepeated(policy: FilterPolicy, format: ExpositionFormat?, names: NameEscaping) throws {
        var input: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            input.append(contentsOf: chunk[0..<count])
        }
        let memo = SeriesMemo(budget: policy.memoBudget)
        // Admission memory across the passes too, as the gateway keeps it across scrapes.
        let tracker = policy.limits.needsTracker ? SeriesTracker(limits: policy.limits) : nil
        var first: (output: [UInt8], report: FilterReport)?
        var later: [Double] = []
        for pass in 1...`repeat` {
            // Timed as the gateway runs it: chunk by chunk into a small buffer; what
            // is kept for the check and stdout is copied out of the timed part.
            var elapsed = Duration.zero
            var output: [UInt8] = []
            output.reserveCapacity(input.count + 4096)
            var chunkOutput: [UInt8] = []
            chunkOutput.reserveCapacity(1 << 17)
            var start = ContinuousClock.now
            let filter = Self.makeFilter(policy: policy, format: format, names: names, tracker: tracker, memo: memo)
            var offset = 0
            while offset < input.count {
                let end = min(offset + (1 << 16), input.count)
                input.withUnsafeBytes { filter.process(UnsafeRawBufferPointer(rebasing: $0[offset..<end]), into: &chunkOutput) }
                offset = end
                elapsed += start.duration(to: .now)
                output.append(contentsOf: chunkOutput)
                chunkOutput.removeAll(keepingCapacity: true)
                start = .now
            }
            let report = filter.finish(into: &chunkOutput)
            elapsed += start.duration(to: .now)
            output.append(contentsOf: chunkOutput)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let lines = filter.memoCursor.statistics
            printError("""
                pass \(pass)\(pass == 1 ? " (first scrape)" : ""): \(Self.decimal(seconds * 1000, places: 2)) ms, \
                \(Self.decimal(Double(input.count) / seconds / 1e6, places: 0)) MB/s; memo: \(lines.hits) hits, \
                \(lines.misses) remembered, \(lines.refused) not remembered, \
                \(memo.usedBytes) of \(memo.budget) bytes held
                """)
            if let first {
                guard first.output == output, first.report == report else {
                    printError("filter: pass \(pass) differs from the first: the memo changed the result")
                    throw ExitCode.failure
                }
                later.append(seconds)
            } else {
                first = (output, report)
            }
            if pass == `repeat` {
                writeAll(output, to: STDOUT_FILENO)
                printError(Self.summary(report))
            }
        }
        if !later.isEmpty {
            let median = later.sorted()[later.count / 2]
            printError("""
                steady state (median of passes 2-\(`repeat`)): \(Self.decimal(median * 1000, places: 2)) ms, \
                \(Self.decimal(Double(input.count) / median / 1e6, places: 0)) MB/s
                """)
        }
        if first?.report.failed == true {
            printError("filter: the policy fails this scrape (invalid_lines: fail_scrape)")
            throw ExitCode.failure
        }
    }

    /// A non-negative number with a fixed count of decimals (without Foundation).
    static func decimal(_ value: Double, places: Int) -> String {
        var scale = 1
        for _ in 0..<places { scale *= 10 }
        let scaled = Int((value * Double(scale)).rounded())
        guard places > 0 else { return "\(scaled)" }
        let fraction = String(scaled % scale)
        return "\(scaled / scale).\(String(repeating: "0", count: places - fraction.count))\(fraction)"
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

    /// The text filter for `format`, the protobuf one for nil.
    private static func makeFilter(policy: FilterPolicy, format: ExpositionFormat?, names: NameEscaping,
                                   tracker: SeriesTracker? = nil, memo: SeriesMemo? = nil) -> any ScrapeFilterEngine {
        guard let format else { return ProtobufFilter(policy: policy, names: names, tracker: tracker, memo: memo) }
        return StreamingFilter(policy: policy, format: format, names: names, tracker: tracker, memo: memo)
    }
}
