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
    private let scrubber: PIIScrubber?
    private let tracker: SeriesTracker?
    private var splitter: LineSplitter
    private var structure: ExpositionStructure
    /// No rule can change a label: samples only go through the structure check.
    private let isPassThrough: Bool
    private var sawEOF = false
    public private(set) var report = FilterReport()

    // Family and admission state of this scrape.
    private var family: [UInt8]?
    private var unitsThisScrape: [SeriesTracker.UnitKey: Bool] = [:]
    private var reservedRemaining = 0
    private let now = ContinuousClock.now

    /// - Parameter tracker: the admission memory shared by the scrapes of this policy;
    ///   needed when the policy has a sample, series or label-value limit.
    public init(policy: FilterPolicy, format: ExpositionFormat, tracker: SeriesTracker? = nil) {
        self.policy = policy
        self.format = format
        self.relabeler = policy.relabelRules.isEmpty ? nil : Relabeler(rules: policy.relabelRules)
        self.scrubber = policy.pii.isEmpty ? nil : PIIScrubber(policy: policy.pii)
        self.tracker = policy.limits.needsTracker ? (tracker ?? SeriesTracker(limits: policy.limits)) : nil
        self.splitter = LineSplitter(maximumLineLength: policy.maximumLineLength)
        self.structure = ExpositionStructure(format: format)
        self.isPassThrough = policy.isIdentity
        self.reservedRemaining = self.tracker?.reservedSamples() ?? 0
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
        structure.finish(into: &output)
        countDroppedGroups()
        if format == .openMetrics {
            // Always closed: the HTTP body ended whole, so nothing was cut short.
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
        case .success(let metadata) where Self.isMetadata(metadata):
            switch structure.metadata(metadata, into: &output) {
            case .write:
                if case .help(let name, _) = metadata { family = name }
                if case .type(let name, _) = metadata { family = name }
                if case .unit(let name, _) = metadata { family = name }
                writeMetadata(metadata, original: line, into: &output)
            case .drop(let reason):
                reject(reason)
            }
            countDroppedGroups()
        case .success(.sample(let sample)):
            report.samplesIn += 1
            handle(sample, original: line, into: &output)
        case .success:
            break
        }
    }

    private static func isMetadata(_ line: ExpositionLine) -> Bool {
        switch line {
        case .help, .type, .unit: return true
        default: return false
        }
    }

    /// Metadata as read, trimmed of blanks; a text-format HELP keeps only the escapes
    /// the text format knows (`\\`, `\n`), others get their backslash escaped.
    private func writeMetadata(_ line: ExpositionLine, original: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        if format == .text, case .help(let name, let text) = line {
            output.append(contentsOf: "# HELP ".utf8)
            ExpositionWriter.writeName(name, into: &output)
            output.append(UInt8(ascii: " "))
            var index = 0
            while index < text.count {
                let byte = text[index]
                if byte == UInt8(ascii: "\\") {
                    let next = index + 1 < text.count ? text[index + 1] : 0
                    if next == UInt8(ascii: "\\") || next == UInt8(ascii: "n") {
                        output.append(byte)
                        output.append(next)
                        index += 2
                        continue
                    }
                    output.append(contentsOf: "\\\\".utf8)
                    index += 1
                    continue
                }
                output.append(byte)
                index += 1
            }
            while output.last == UInt8(ascii: " ") || output.last == UInt8(ascii: "\t") { output.removeLast() }
            output.append(0x0A)
            return
        }
        // OpenMetrics lines are exact already (`# HELP a ` keeps its space).
        output.append(contentsOf: format == .text ? Self.trimmed(original) : original[...])
        output.append(0x0A)
    }

    /// A line without the blanks around it (the text format's parser refuses them at
    /// the end of a line).
    static func trimmed(_ line: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer.SubSequence {
        var start = line.startIndex
        var end = line.endIndex
        while start < end, line[start] == UInt8(ascii: " ") || line[start] == UInt8(ascii: "\t") { start += 1 }
        while end > start, line[end - 1] == UInt8(ascii: " ") || line[end - 1] == UInt8(ascii: "\t") { end -= 1 }
        return line[start..<end]
    }

    private func countDroppedGroups() {
        for dropped in structure.takeDroppedGroups() {
            report.samplesOut -= dropped.samples
            report.samplesRewritten -= dropped.rewritten
            report.drop(dropped.reason, metric: dropped.family, count: dropped.samples)
        }
    }

    private func handle(_ sample: Sample, original: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        if isPassThrough {
            // Nothing can change the labels: the structure check is all there is.
            emit(sample, name: sample.name, labels: sample.labels, exemplar: sample.exemplar,
                 unchanged: !sample.needsRewrite, original: original, into: &output)
            return
        }
        var labels = LabelSet(sample: sample)
        let before = labels
        if let relabeler {
            guard relabeler.apply(&labels) else {
                report.drop("relabel", metric: sample.name)
                return
            }
        }
        var exemplar = sample.exemplar
        if let scrubber {
            guard scrub(&labels, with: scrubber, metric: sample.name) else { return }
            if var scrubbed = exemplar.map({ LabelSet(labels: $0.labels) }) {
                if scrub(&scrubbed, with: scrubber, metric: sample.name, exemplar: true) {
                    exemplar?.labels = scrubbed.labels
                } else {
                    exemplar = nil
                }
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
        if let limit = policy.limits.labelLimit, labels.labels.count - 1 > limit {
            report.drop("label_limit", metric: name)
            return
        }
        if let limit = policy.limits.labelValueLengthLimit, labels.labels.contains(where: { $0.value.count > limit }) {
            report.drop("label_value_length_limit", metric: name)
            return
        }
        if let tracker {
            guard admit(labels, name: name, tracker: tracker) else { return }
        }
        let outputLabels = labels.labels.filter { $0.name != LabelSet.metricNameLabel }
        let unchanged = labels == before && exemplar == sample.exemplar && !sample.needsRewrite
        emit(sample, name: name, labels: outputLabels, exemplar: exemplar, unchanged: unchanged, original: original, into: &output)
    }

    /// Writes a sample (its original bytes when nothing changed) through the
    /// structure check. An exemplar that may not stand on this sample, or that a PII
    /// pseudonym made longer than OpenMetrics allows, is taken off; the sample stays.
    private func emit(_ sample: Sample, name: [UInt8], labels: [Label], exemplar: Exemplar?, unchanged: Bool,
                      original: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        var exemplar = exemplar
        var unchanged = unchanged
        if let current = exemplar, Self.exemplarRunes(current) > 128 {
            exemplar = nil
            unchanged = false
        }
        let render = { (withExemplar: Bool) -> [UInt8] in
            var line: [UInt8] = []
            if unchanged && withExemplar == (exemplar != nil) {
                line.append(contentsOf: Self.trimmed(original))
                line.append(0x0A)
            } else {
                ExpositionWriter.write(name: name, labels: labels, value: sample.value, timestamp: sample.timestamp,
                                       exemplar: withExemplar ? exemplar : nil, into: &line)
            }
            return line
        }
        let verdict = structure.sample(name: name, labels: labels, value: sample.value, timestamp: sample.timestamp,
                                       hasExemplar: exemplar != nil, rewritten: !unchanged, render: render, into: &output)
        if case .write(exemplarRemoved: true) = verdict { unchanged = false }
        record(verdict, sample: sample, rewritten: !unchanged, output: &output)
    }

    private func record(_ verdict: ExpositionStructure.Verdict, sample: Sample, rewritten: Bool, output: inout [UInt8]) {
        countDroppedGroups()
        switch verdict {
        case .write:
            report.samplesOut += 1
            if rewritten { report.samplesRewritten += 1 }
        case .drop(let reason):
            report.drop(reason, metric: sample.name)
        }
    }

    static func exemplarRunes(_ exemplar: Exemplar) -> Int {
        exemplar.labels.reduce(0) { total, label in
            total + (label.name + label.value).reduce(0) { $0 + (($1 & 0xC0) != 0x80 ? 1 : 0) }
        }
    }

    /// Applies the PII policy; false when the series is dropped.
    private func scrub(_ labels: inout LabelSet, with scrubber: PIIScrubber, metric: [UInt8], exemplar: Bool = false) -> Bool {
        for label in labels.labels where label.name != LabelSet.metricNameLabel {
            switch scrubber.outcome(name: label.name, value: label.value) {
            case .keep:
                continue
            case .replace(let value, let rule, let action):
                labels.set(label.name, value)
                count(scrubber.ruleName(rule), action.rawValue)
            case .dropLabel(let rule):
                labels.delete(label.name)
                count(scrubber.ruleName(rule), PIIAction.drop.rawValue)
            case .dropSeries(let rule):
                count(scrubber.ruleName(rule), PIIAction.dropSeries.rawValue)
                if !exemplar { report.drop("pii", metric: metric) }
                return false
            }
        }
        return true
    }

    private func count(_ rule: String, _ action: String) {
        report.piiActions[FilterReport.PIIKey(rule: rule, action: action), default: 0] += 1
    }

    /// Stable admission of the series' unit (its family and labels without `le` and
    /// `quantile`); false when refused.
    private func admit(_ labels: LabelSet, name: [UInt8], tracker: SeriesTracker) -> Bool {
        let familyName = Self.family(of: name, current: family)
        let unitLabels = labels.labels.filter {
            $0.name != LabelSet.metricNameLabel && !$0.name.elementsEqual("le".utf8) && !$0.name.elementsEqual("quantile".utf8)
        }
        let key = SeriesTracker.UnitKey(familyName, unitLabels)
        if let admitted = unitsThisScrape[key] {
            if admitted { tracker.countSample(key, firstOfScrape: false) } else { report.drop("unit_refused", metric: name) }
            return admitted
        }
        let admission = tracker.admit(family: familyName, unitLabels: unitLabels, key: key,
                                      samplesSoFar: report.samplesOut, reservedRemaining: reservedRemaining, now: now)
        switch admission {
        case .refused(let reason):
            unitsThisScrape[key] = false
            report.drop(reason, metric: name)
            return false
        case .known(let previousSamples):
            // Its samples were reserved; they are counted as they pass now.
            reservedRemaining = max(0, reservedRemaining - previousSamples)
        case .new:
            break
        }
        unitsThisScrape[key] = true
        tracker.countSample(key, firstOfScrape: true)
        return true
    }

    /// The family a sample belongs to: the current metadata's name when the sample's
    /// name is it or it with a type suffix, else the sample's own name.
    static func family(of name: [UInt8], current: [UInt8]?) -> [UInt8] {
        guard let current, name.starts(with: current) else { return name }
        let suffix = name[current.count...]
        if suffix.isEmpty { return current }
        for candidate in ["_bucket", "_sum", "_count", "_created", "_total", "_gcount", "_gsum", "_info"]
        where suffix.elementsEqual(candidate.utf8) {
            return current
        }
        return name
    }
}

/// 128 bits of a label set (FNV-1a, two offsets): what the duplicate check keeps per
/// series instead of the labels themselves.
struct SeriesFingerprint: Hashable {
    var high: UInt64
    var low: UInt64

    /// The same fingerprint for the same name and labels in any order (per-label
    /// hashes are summed); labels with empty values count as absent. With
    /// `excludingBuckets`, `le` and `quantile` are left out (a histogram's group).
    init(name: [UInt8], labels: [Label], excludingBuckets: Bool = false) {
        var high: UInt64 = 0
        var low: UInt64 = 0
        func add(_ labelName: [UInt8], _ value: [UInt8]) {
            var first: UInt64 = 0xcbf2_9ce4_8422_2325
            var second: UInt64 = 0x8422_2325_cbf2_9ce4
            for byte in labelName {
                first = (first ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
                second = (second ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 &+ 0x9E37_79B9
            }
            first = (first ^ 0xFF) &* 0x0000_0100_0000_01B3
            second = (second ^ 0xFF) &* 0x0000_0100_0000_01B3 &+ 0x9E37_79B9
            for byte in value {
                first = (first ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
                second = (second ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 &+ 0x9E37_79B9
            }
            // Avalanche before summing, so that sums of similar labels do not collide.
            first ^= first >> 33
            first &*= 0xff51_afd7_ed55_8ccd
            first ^= first >> 33
            second ^= second >> 29
            second &*= 0xc4ce_b9fe_1a85_ec53
            second ^= second >> 32
            high &+= first
            low &+= second
        }
        add(LabelSet.metricNameLabel, name)
        for label in labels where !label.value.isEmpty {
            if excludingBuckets, label.name.elementsEqual("le".utf8) || label.name.elementsEqual("quantile".utf8) { continue }
            add(label.name, label.value)
        }
        self.high = high
        self.low = low
    }

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
