/// Filters one exposition, chunk by chunk: every line is parsed (one that is not
/// understood is never passed on), samples go through relabeling, and series that
/// end up with the same identity are passed on once. Memory is one partial line, the
/// output of one chunk, and a 16-byte fingerprint per series of this scrape.
///
/// One per scrape; not thread-safe.
public final class StreamingFilter {
    public let format: ExpositionFormat
    private let policy: FilterPolicy
    private let relabeler: Relabeler?
    private var splitter: LineSplitter
    private var seenSeries = Set<SeriesFingerprint>()
    private var sawEOF = false
    public private(set) var report = FilterReport()

    public init(policy: FilterPolicy, format: ExpositionFormat) {
        self.policy = policy
        self.format = format
        self.relabeler = policy.relabelRules.isEmpty ? nil : Relabeler(rules: policy.relabelRules)
        self.splitter = LineSplitter(maximumLineLength: policy.maximumLineLength)
    }

    /// Filters one chunk; appends what may be sent on to `output`.
    public func process(_ chunk: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        splitter.feed(chunk) { event in
            switch event {
            case .line(let line):
                handle(line, into: &output)
            case .oversizedLine:
                reject("line_too_long")
            }
        }
    }

    public func process(_ chunk: [UInt8], into output: inout [UInt8]) {
        chunk.withUnsafeBytes { process($0, into: &output) }
    }

    /// The body ended: handles a last line without a newline and closes the
    /// exposition (`# EOF` for OpenMetrics, when the app sent one).
    public func finish(into output: inout [UInt8]) -> FilterReport {
        if let last = splitter.finish() {
            last.withUnsafeBytes { handle($0, into: &output) }
        }
        if sawEOF {
            output.append(contentsOf: "# EOF\n".utf8)
        }
        return report
    }

    private func reject(_ reason: String) {
        report.reject(reason)
        if policy.invalidLines == .failScrape { report.failed = true }
    }

    private func handle(_ line: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        if sawEOF {
            if !line.isEmpty { reject("text_after_eof") }
            return
        }
        switch ExpositionParser.parse(line, format: format) {
        case .failure(let error):
            reject(String(error.reason.description.map { $0 == " " ? "_" : $0 }))
        case .success(.blank), .success(.comment):
            break  // nothing a scraper needs, and comments may hold anything
        case .success(.eof):
            sawEOF = true
        case .success(.help), .success(.type), .success(.unit):
            output.append(contentsOf: line)
            output.append(0x0A)
        case .success(.sample(let sample)):
            report.samplesIn += 1
            handle(sample, original: line, into: &output)
        }
    }

    private func handle(_ sample: Sample, original: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        var labels = LabelSet(sample: sample)
        let before = labels
        if let relabeler {
            guard relabeler.apply(&labels) else {
                report.drop("relabel", metric: sample.name)
                return
            }
        }
        if labels.isEmpty {
            report.drop("relabel", metric: sample.name)
            return
        }
        guard let name = labels.metricName else {
            report.drop("missing_metric_name", metric: sample.name)
            return
        }
        let valid = sample.quotedName && labels == before
            || (LabelNames.isValidMetricName(name)
                && labels.labels.allSatisfy { $0.name == LabelSet.metricNameLabel || LabelNames.isValid($0.name) })
        guard valid else {
            report.drop("invalid_name", metric: sample.name)
            return
        }
        if format == .openMetrics && name != sample.name {
            // A renamed sample would leave its family, which OpenMetrics forbids.
            report.drop("renamed_in_openmetrics", metric: sample.name)
            return
        }
        guard seenSeries.insert(SeriesFingerprint(labels)).inserted else {
            report.drop("duplicate", metric: sample.name)
            return
        }
        report.samplesOut += 1
        if labels == before {
            output.append(contentsOf: original)
            output.append(0x0A)
            return
        }
        report.samplesRewritten += 1
        ExpositionWriter.write(
            name: name, labels: labels.labels.filter { $0.name != LabelSet.metricNameLabel },
            value: sample.value, timestamp: sample.timestamp, exemplar: sample.exemplar, into: &output)
    }
}

/// 128 bits of a label set (FNV-1a, two offsets): what the duplicate check keeps per
/// series instead of the labels themselves.
struct SeriesFingerprint: Hashable {
    var high: UInt64
    var low: UInt64

    init(_ set: LabelSet) {
        var first: UInt64 = 0xcbf2_9ce4_8422_2325
        var second: UInt64 = 0x8422_2325_cbf2_9ce4
        func mix(_ byte: UInt8) {
            first = (first ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            second = (second ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 &+ 0x9E37_79B9
        }
        for label in set.labels {
            for byte in label.name { mix(byte) }
            mix(0xFF)
            for byte in label.value { mix(byte) }
            mix(0xFE)
        }
        high = first
        low = second
    }
}
