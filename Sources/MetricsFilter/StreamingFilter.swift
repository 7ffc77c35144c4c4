/// Filters one exposition, chunk by chunk: every line is parsed (one that is not
/// understood is never passed on), samples go through relabeling, and series that
/// end up with the same identity are passed on once. Memory is one partial line, the
/// output of one chunk, and the duplicate check: a bit per series the memo numbered,
/// at most 16 bytes per other series of this scrape.
///
/// With a `SeriesMemo`, a plain sample line whose series part an earlier scrape
/// decided has that decision replayed (see "The series memo" in
/// docs/ARCHITECTURE.md); the others are filtered in full and their decisions
/// written down.
///
/// Its per-line state is `@exclusivity(unchecked)`: Swift's dynamic exclusivity
/// checks on a class's stored properties cost about a third of a remembered line's
/// time, and here they can never fire: every access is made by this class's own
/// methods on one thread, and no closure it hands out (to the splitter, the structure
/// check, the memo's draft) reaches a property that is being accessed.
///
/// One per scrape; not thread-safe. Long (about 850 lines) because it holds the ways a
/// sample can take side by side: the plain one on the line's positions, the plain one
/// through `RelabelLabels` (rules that need the whole label set), the full one on
/// label sets, and the memo's replay. They must decide alike, in the same order (the
/// fuzz target holds them to it), so each runs its checks in the same sequence here;
/// splitting them would put the parts of one decision in different files. What they
/// share below the decisions (relabeling, PII rules, admission, the structure check,
/// the memo) lives in its own types.
public final class StreamingFilter {
    public let format: ExpositionFormat
    /// How names that are not legacy names reach the scraper.
    public let names: NameEscaping
    private let policy: FilterPolicy
    private let relabeler: Relabeler?
    /// The relabel rules when they decide by names alone: then the fast path applies them.
    private let nameRelabeling: NameRelabeling?
    private let scrubber: PIIScrubber?
    /// `scrubber` as each plain line reaches it, without a retain and a release.
    private let scrubberPerLine: Unmanaged<PIIScrubber>?
    @exclusivity(unchecked) private var splitter: LineSplitter
    @exclusivity(unchecked) private var structure: ExpositionStructure
    /// No rule can change a label: samples only go through the structure check.
    private let isPassThrough: Bool
    @exclusivity(unchecked) private var sawEOF = false
    @exclusivity(unchecked) private var counts = FilterReport()
    @exclusivity(unchecked) private var piiCounts: PIICounts

    /// Plain sample lines are filtered in place (see `PlainSample`): by the line's
    /// own positions when the relabel rules decide by names alone (see
    /// `NameRelabeling`), else through `RelabelLabels`. Settable (before the first
    /// chunk) so that the fuzzer can hold the paths against each other.
    var usesPlainPath = true
    /// Where the plain path runs relabel rules that need the whole label set.
    @exclusivity(unchecked) private var relabeled = RelabelLabels()
    @exclusivity(unchecked) private var plain = PlainSample()
    /// What the PII rules made of each label of the plain sample being filtered.
    @exclusivity(unchecked) private var plainEdits: [PlainEdit] = []
    /// The plain sample's label indices in name order.
    @exclusivity(unchecked) private var plainOrder: [Int] = []
    /// The plain sample's unit labels, for `valuesPerLabel`.
    @exclusivity(unchecked) private var unitValues: [SeriesTracker.ValueKey] = []

    /// The series decisions of earlier scrapes (see `SeriesMemo`), when given.
    private let memo: SeriesMemo?
    /// `memo` as each line reaches it: without a retain and a release around every
    /// line (7 % of a remembered scrape's time in the gateway); `memo` keeps it alive.
    private let memoPerLine: Unmanaged<SeriesMemo>?
    /// This scrape's place in the memo, and whether it has the memo alone.
    @exclusivity(unchecked) public private(set) var memoCursor: SeriesMemo.Cursor
    /// The decision being written down for the memo, while a line it did not know is
    /// filtered in full (`recording`), with the PII counts from before that line.
    @exclusivity(unchecked) private var draft = MemoDraft()
    @exclusivity(unchecked) private var recording = false
    @exclusivity(unchecked) private var piiBefore: PIICounts?


    /// Whether an unreadable line failed the scrape (`invalid_lines: fail_scrape`).
    public var failed: Bool { counts.failed }

    /// Bytes this scrape's state holds and keeps until the scrape ends: the duplicate
    /// check's bits for the memo's numbered series, made up front, and 8 to 16 bytes
    /// for each other series written so far,
    /// plus a histogram group held back. The gateway counts them in its buffer budget,
    /// beside the body bytes waiting for the scraper.
    public var retainedBytes: Int {
        structure.retainedBytes + (admission?.retainedBytes ?? 0)
    }

    /// What this scrape's filter did so far.
    public var report: FilterReport {
        var report = counts
        dropRun.flush(into: &report)
        if let scrubber { piiCounts.add(to: &report, scrubber: scrubber) }
        return report
    }

    // Family and admission state of this scrape.
    @exclusivity(unchecked) private var family: [UInt8]?
    /// The family's name as the app wrote it, before escaping: the samples' names
    /// are escaped against it.
    @exclusivity(unchecked) private var appFamily: [UInt8]?
    @exclusivity(unchecked) private var admission: ScrapeAdmission?
    /// Whether there is admission (asked per line: cheaper than looking at the optional).
    private let admits: Bool
    /// Whether admission counts label values (`values_per_label`).
    private let countsValues: Bool
    /// Drops of one reason and metric in a row (see `DropRun`).
    @exclusivity(unchecked) private var dropRun = DropRun()
    @exclusivity(unchecked) private var lastFamilyFingerprint: (name: [UInt8], fingerprint: SeriesFingerprint)?

    /// - Parameters:
    ///   - names: how the scraper takes names that are not legacy names: as they are,
    ///     or escaped (the `escaping=` it asked for).
    ///   - tracker: the admission memory shared by the scrapes of this policy; needed
    ///     when the policy has a sample, series or label-value limit.
    ///   - memo: the series decisions remembered from earlier scrapes; this scrape
    ///     uses and adds to them (one scrape at a time), or only reads them when
    ///     `sharingMemo` (with other scrapes at once: `SeriesMemoStore` says which).
    public init(policy: FilterPolicy, format: ExpositionFormat, names: NameEscaping = .unspecified,
                tracker: SeriesTracker? = nil, memo: SeriesMemo? = nil, sharingMemo: Bool = false) {
        self.policy = policy
        self.format = format
        self.names = names
        self.relabeler = policy.relabelRules.isEmpty ? nil : Relabeler(rules: policy.relabelRules)
        self.nameRelabeling = policy.relabelRules.isEmpty ? nil : NameRelabeling(rules: policy.relabelRules)
        self.scrubber = policy.pii.isEmpty ? nil : PIIScrubber(policy: policy.pii)
        self.scrubberPerLine = scrubber.map { Unmanaged.passUnretained($0) }
        self.piiCounts = PIICounts(policy: policy.pii)
        self.splitter = LineSplitter(maximumLineLength: policy.maximumLineLength)
        let memo = memo.flatMap { $0.budget > 0 ? $0 : nil }
        self.memoCursor = SeriesMemo.Cursor(exclusive: !sharingMemo)
        if !sharingMemo { memo?.beginScrape(policy: policy, format: format, names: names) }
        self.structure = ExpositionStructure(format: format, expectedSeries: memo?.seriesWrittenLastScrape ?? 0,
                                             numbering: SeriesNumbering(memo: memo))
        self.isPassThrough = policy.isIdentity
        self.admission = policy.limits.needsTracker
            ? ScrapeAdmission(tracker: tracker ?? SeriesTracker(limits: policy.limits)) : nil
        self.admits = policy.limits.needsTracker
        self.countsValues = policy.limits.needsTracker && policy.limits.valuesPerLabel != nil
        self.memo = memo
        self.memoPerLine = memo.map { Unmanaged.passUnretained($0) }
    }

    /// Filters one chunk; appends what may be sent on to `output`.
    public func process(_ chunk: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        splitter.feed(chunk) { event in
            switch event {
            case .line(let line):
                handle(line, into: &output)
            case .oversizedLine:
                reject(.lineTooLong)
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
        memo?.scrapeEnded(seriesWritten: counts.samplesOut, memoCursor)
        return report
    }

    /// A line left out: counted, and under `fail_scrape` the scrape fails.
    private func reject(_ reason: DropReason) {
        counts.reject(reason)
        if policy.invalidLines == .failScrape { counts.failed = true }
    }

    /// The same for a line the parser could not read, under the parser's words.
    private func reject(unparsed reason: StaticString) {
        counts.reject(unparsed: String(reason.description.map { $0 == " " ? "_" : $0 }))
        if policy.invalidLines == .failScrape { counts.failed = true }
    }

    private func handle(_ line: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        if sawEOF {
            if !line.isEmpty { reject(.textAfterEof) }
            return
        }
        if let memoPerLine {
            let remembered = memoPerLine._withUnsafeGuaranteedRef { filterThroughMemo(line, memo: $0, into: &output) }
            if remembered { return }
        } else if usesPlainPath, plain.read(line, strict: format == .openMetrics) {
            counts.samplesIn += 1
            filterPlainSample(into: &output)
            return
        }
        parseAndFilter(line, into: &output)
    }

    /// A line as the full parser reads it: metadata, a sample off the fast path,
    /// or what is refused.
    private func parseAndFilter(_ line: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        switch ExpositionParser.parse(line, format: format) {
        case .failure(let error):
            reject(unparsed: error.reason)
        case .success(.blank), .success(.comment):
            break  // nothing a scraper needs, and comments may hold anything
        case .success(.eof):
            sawEOF = true
        case .success(let read) where Self.isMetadata(read):
            let metadata = names.escape(read)
            switch structure.metadata(metadata, into: &output) {
            case .write:
                family = Self.metadataName(metadata)
                appFamily = Self.metadataName(read)
                writeMetadata(metadata, into: &output)
            case .drop(let reason):
                reject(reason)
            }
            countDroppedGroups()
        case .success(.sample(let sample)):
            counts.samplesIn += 1
            handle(sample, original: line, into: &output)
        case .success:
            break
        }
    }

    // MARK: The memo

    /// A plain sample line through the memo: the line the memo predicts, or one it
    /// finds by hash, has its decision replayed; any other plain sample is filtered in
    /// full and its decision remembered. False for a line that is no plain sample
    /// (left to the full parser, unremembered).
    private func filterThroughMemo(_ line: UnsafeRawBufferPointer, memo: SeriesMemo, into output: inout [UInt8]) -> Bool {
        let bytes = line.assumingMemoryBound(to: UInt8.self)
        let strict = format == .openMetrics
        let predicted = memo.predicted(after: memoCursor)
        if predicted >= 0, memo.lineStarts(with: predicted, bytes),
            plain.readValue(of: line, from: Int(memo.entry(predicted).keyLength) + 1, strict: strict) {
            counts.samplesIn += 1
            replay(predicted, memo: memo, line: bytes, into: &output)
            return true
        }
        guard plain.read(line, strict: strict) else { return false }
        counts.samplesIn += 1
        let key = plain.seriesPart
        let hash = memo.hash(of: key)
        if let found = memo.find(key, hash: hash) {
            replay(found, memo: memo, line: bytes, into: &output)
            return true
        }
        recording = memo.takesMore(memoCursor)
        defer { recording = false }
        if recording {
            draft.start(key: key)
            piiBefore = scrubber == nil ? nil : piiCounts
        } else {
            piiBefore = nil  // no PII delta to work out for a decision not written down
            memo.passedOver(&memoCursor)
        }
        if usesPlainPath {
            filterPlainSample(into: &output)
        } else if case .success(.sample(let sample)) = ExpositionParser.parse(line, format: format) {
            // The parser reads a plain sample as a sample, always.
            handle(sample, original: line, into: &output)
        } else {
            counts.samplesIn -= 1
            parseAndFilter(line, into: &output)
            return true
        }
        if recording, draft.decided { memo.remember(key: key, hash: hash, draft: &draft, &memoCursor) }
        return true
    }

    /// The PII counts the line being recorded added.
    private var piiDelta: PIICounts.Delta {
        piiBefore.map { piiCounts.delta(since: $0) } ?? .none
    }

    /// A series dropped before admission: counted, and written down when recording.
    private func dropSeries(_ reason: DropReason, metric: [UInt8]) {
        counts.drop(reason, metric: metric)
        if recording { metric.withUnsafeBufferPointer { draft.drop(reason, metric: $0, pii: piiDelta) } }
    }

    private func dropSeries(_ reason: DropReason, metric: UnsafeBufferPointer<UInt8>) {
        counts.drop(reason, metric: Array(metric))
        if recording { draft.drop(reason, metric: metric, pii: piiDelta) }
    }

    /// A series that goes on to admission and the structure check, written down when
    /// recording: `writeOutput` nil when the line is written as it came.
    /// For the full path's labels: a label set's (no empty values), or the labels as
    /// parsed on the pass-through path (`emptyValuesArePresent`: `a=""` is one there).
    private func rememberWrite(name: [UInt8], labels: [Label], rewritten: Bool, emptyValuesArePresent: Bool) {
        guard recording else { return }
        name.withUnsafeBufferPointer { buffer in
            rememberWrite(name: buffer, labels: labels, rewritten: rewritten, emptyValuesArePresent: emptyValuesArePresent,
                          writeOutput: rewritten ? { ExpositionWriter.writeSeries(name: name, labels: labels, into: &$0) } : nil)
        }
    }

    private func rememberWrite<Labels: MemoLabelSource>(name: UnsafeBufferPointer<UInt8>, labels: Labels, rewritten: Bool,
                                                        emptyValuesArePresent: Bool,
                                                        writeOutput: ((inout [UInt8]) -> Void)?) {
        guard recording else { return }
        draft.write(name: name, labels: labels, rewritten: rewritten, emptyValuesArePresent: emptyValuesArePresent,
                    pii: piiDelta, valueKeys: countsValues ? .unitLabels : .none, writeOutput: writeOutput)
    }

    /// Does for a remembered series what filtering it in full did: the same counts,
    /// the same drop, or admission and the structure check fed from the memo, and
    /// the remembered bytes with this line's value and timestamp.
    private func replay(_ number: Int32, memo: SeriesMemo, line: UnsafeBufferPointer<UInt8>, into output: inout [UInt8]) {
        memo.touch(number, &memoCursor)
        let remembered = memo.bytes(number)
        let entry = remembered.entry
        remembered.forEachPIICount { piiCounts.add(index: $0, count: $1) }
        let name = remembered.name
        if let reason = entry.dropReason {
            countDrop(reason, metric: name)
            return
        }
        let labels = MemoLabels(bytes: remembered)
        if admits {
            let familyName = Self.family(of: name, current: family)
            let unit = familyFingerprint(familyName) &+ entry.unitSum
            unitValues.removeAll(keepingCapacity: true)
            remembered.forEachValueKey { unitValues.append($0) }
            var hint = entry.unitHint
            let verdict = admission!.admit(SeriesTracker.UnitKey(unit), family: familyName, values: unitValues,
                                           samplesSoFar: counts.samplesOut, unitHint: &hint)
            if hint != entry.unitHint { memo.setUnitHint(hint, of: number, memoCursor) }
            switch verdict {
            case .refused(let reason):
                countDrop(reason, metric: name)
                return
            case .admitted:
                break
            }
        }
        let timestamp = plain.timestamp
        let keyLength = Int(entry.keyLength)
        let verdict = structure.sample(
            name: name, labels: labels, value: format == .openMetrics ? ExpositionStructure.number(plain.value) : nil,
            time: timestamp.flatMap { ExpositionStructure.number($0) }, hasTimestamp: timestamp != nil,
            hasExemplar: false, rewritten: entry.rewritten, memoEntry: number,
            render: { _, buffer in
                buffer.append(contentsOf: remembered.output)
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: line[keyLength...]))
                buffer.append(0x0A)
            },
            into: &output)
        countDroppedGroups()
        switch verdict {
        case .write:
            counts.samplesOut += 1
            if entry.rewritten { counts.samplesRewritten += 1 }
        case .drop(let reason):
            let key = remembered.key
            var nameEnd = 0
            while nameEnd < key.count, ExpositionTokens.isMetricNameByte(key[nameEnd]) { nameEnd += 1 }
            countDrop(reason, metric: UnsafeBufferPointer(rebasing: key[0..<nameEnd]))
        }
    }

    /// The fingerprint of a family's name alone, kept for the next line: a family's
    /// lines come together.
    private func familyFingerprint(_ name: UnsafeBufferPointer<UInt8>) -> SeriesFingerprint {
        if let last = lastFamilyFingerprint, last.name.withUnsafeBufferPointer({ ExpositionTokens.equal($0, name) }) {
            return last.fingerprint
        }
        let fingerprint = SeriesFingerprint(name: name)
        lastFamilyFingerprint = (Array(name), fingerprint)
        return fingerprint
    }

    /// Counts a dropped series as part of a run (see `dropRun`).
    private func countDrop(_ reason: DropReason, metric: UnsafeBufferPointer<UInt8>) {
        dropRun.add(reason, metric: metric, to: &counts)
    }

    /// The family a sample belongs to (see `family(of:current:)`), in place.
    private static func family(of name: UnsafeBufferPointer<UInt8>, current: [UInt8]?) -> UnsafeBufferPointer<UInt8> {
        guard let current, name.count >= current.count,
            current.withUnsafeBufferPointer({ ExpositionTokens.equal(UnsafeBufferPointer(rebasing: name[0..<$0.count]), $0) }),
            isFamilySuffix(UnsafeBufferPointer(rebasing: name[current.count...])) else { return name }
        return UnsafeBufferPointer(rebasing: name[0..<current.count])
    }

    private static func isMetadata(_ line: ExpositionLine) -> Bool {
        metadataName(line) != nil
    }

    private static func metadataName(_ line: ExpositionLine) -> [UInt8]? {
        switch line {
        case .help(let name, _), .type(let name, _), .unit(let name, _): return name
        default: return nil
        }
    }

    /// Metadata written anew from what was read, in single spaces: its name (escaped
    /// for the scraper, unquoted when it is a legacy name, since a legacy scraper reads
    /// no quotes) by the writer; a text-format HELP keeps only the escapes the text
    /// format knows (`\\`, `\n`), others get their backslash escaped; an OpenMetrics
    /// HELP text goes as it came (`# HELP a ` keeps its space).
    private func writeMetadata(_ line: ExpositionLine, into output: inout [UInt8]) {
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
        let (keyword, name, rest): (StaticString, [UInt8], [UInt8]) = switch line {
        case .help(let name, let text): ("# HELP ", name, text)
        case .type(let name, let type): ("# TYPE ", name, Array(type.rawValue.utf8))
        case .unit(let name, let unit): ("# UNIT ", name, unit)
        default: ("", [], [])
        }
        output.append(contentsOf: UnsafeBufferPointer(start: keyword.utf8Start, count: keyword.utf8CodeUnitCount))
        ExpositionWriter.writeName(name, into: &output)
        output.append(UInt8(ascii: " "))
        output.append(contentsOf: rest)
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
        guard structure.hasDroppedGroups else { return }
        for dropped in structure.takeDroppedGroups() {
            counts.samplesOut -= dropped.samples
            counts.samplesRewritten -= dropped.rewritten
            counts.drop(dropped.reason, metric: dropped.family, count: dropped.samples)
        }
    }

    private func handle(_ read: Sample, original: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        var sample = read
        guard names.escape(&sample, family: appFamily) else {
            dropSeries(.escapedNameClash, metric: sample.name)
            return
        }
        if isPassThrough {
            // Nothing can change the labels: the structure check is all there is.
            rememberWrite(name: sample.name, labels: sample.labels, rewritten: sample.needsRewrite,
                          emptyValuesArePresent: true)
            emit(sample, name: sample.name, labels: sample.labels, exemplar: sample.exemplar,
                 unchanged: !sample.needsRewrite, original: original, into: &output)
            return
        }
        var labels = LabelSet(sample: sample)
        if let relabeler {
            guard relabeler.apply(&labels) else {
                dropSeries(.relabel, metric: sample.name)
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
            dropSeries(.relabel, metric: sample.name)
            return
        }
        guard let name = labels.metricName else {
            dropSeries(.missingMetricName, metric: sample.name)
            return
        }
        // What the scraper's name validation takes: one name it refuses fails its scrape.
        let valid = names.isValidMetricName(name)
            && labels.labels.allSatisfy { $0.name == LabelSet.metricNameLabel || names.isValidLabelName($0.name) }
        guard valid else {
            dropSeries(.invalidName, metric: sample.name)
            return
        }
        if format == .openMetrics && name != sample.name {
            // A renamed sample would leave its family, which OpenMetrics forbids.
            dropSeries(.renamedInOpenmetrics, metric: sample.name)
            return
        }
        if let limit = policy.limits.labelLimit, labels.labels.count - 1 > limit {
            dropSeries(.labelLimit, metric: name)
            return
        }
        if let limit = policy.limits.labelValueLengthLimit, labels.labels.contains(where: { $0.value.count > limit }) {
            dropSeries(.labelValueLengthLimit, metric: name)
            return
        }
        let outputLabels = labels.labels.filter { $0.name != LabelSet.metricNameLabel }
        let unchanged = labels.isSet(of: sample) && exemplar == sample.exemplar && !sample.needsRewrite
        rememberWrite(name: name, labels: outputLabels, rewritten: !unchanged, emptyValuesArePresent: false)
        guard !admits || admit(labels, name: name) else { return }
        emit(sample, name: name, labels: outputLabels, exemplar: exemplar, unchanged: unchanged, original: original, into: &output)
    }

    /// The fast path for a plain sample line (`plain` holds it): the same decisions
    /// as `handle(_:original:into:)` for a policy whose relabel rules decide by names
    /// alone (or that has none), made on the line in place. A changed line is written
    /// anew with its labels in their original order, less the dropped and empty ones.
    private func filterPlainSample(into output: inout [UInt8]) {
        if nameRelabeling == nil, let relabeler {
            filterRelabeledPlainSample(relabeler, into: &output)
            return
        }
        plain.lend { filterPlainSample($0, into: &output) }
    }

    /// The fast path for a plain sample under no relabel rules, or name-only ones: its
    /// labels edited in place by position (dropped, or their values replaced by the
    /// PII rules), without a label set.
    private func filterPlainSample(_ sample: PlainSample.Lent, into output: inout [UInt8]) {
        if let nameRelabeling, !nameRelabeling.keepsSeries(named: sample.name) {
            dropSeries(.relabel, metric: sample.name)
            return
        }
        var changed = false
        plainEdits.removeAll(keepingCapacity: true)
        if let nameRelabeling, nameRelabeling.changesLabels {
            plainEdits.append(contentsOf: repeatElement(.keep, count: sample.labels.count))
            // An empty value is no label to the label set: dropping it changes nothing.
            for (index, label) in sample.labels.enumerated()
            where label.valueEnd > label.valueStart && !nameRelabeling.keepsLabel(named: sample.labelName(label)) {
                plainEdits[index] = .drop
                changed = true
            }
        }
        if let scrubberPerLine {
            // Reached unretained, as the memo is (`scrubber` keeps it alive).
            guard scrubberPerLine._withUnsafeGuaranteedRef({ scrub(sample, with: $0, changed: &changed) }) else { return }
        }
        plainEdits.withUnsafeBufferPointer { edits in
            finishPlainSample(PlainLabels(sample: sample, edits: edits, emptyIsPresent: isPassThrough), changed: changed, into: &output)
        }
    }

    /// The PII rules on a plain sample's labels, as edits in `plainEdits`; false when a
    /// rule ended the series (dropped and counted here).
    private func scrub(_ sample: PlainSample.Lent, with scrubber: PIIScrubber, changed: inout Bool) -> Bool {
        if plainEdits.isEmpty { plainEdits.append(contentsOf: repeatElement(.keep, count: sample.labels.count)) }
        // Every label is met, in the line's order, unless a rule can end the series:
        // then in name order, as the label set has them, so that the same rules count
        // and the same `drop_series` rule ends it as on the full path.
        guard scrubber.canDropSeries else {
            for index in sample.labels.indices where !scrub(label: index, of: sample, with: scrubber, changed: &changed) {
                return false
            }
            return true
        }
        plainOrder.removeAll(keepingCapacity: true)
        for index in sample.labels.indices {
            let name = sample.labelName(sample.labels[index])
            plainOrder.append(index)
            var position = index
            while position > 0, ExpositionTokens.precedes(name, sample.labelName(sample.labels[plainOrder[position - 1]])) {
                plainOrder[position] = plainOrder[position - 1]
                position -= 1
            }
            plainOrder[position] = index
        }
        for index in plainOrder where !scrub(label: index, of: sample, with: scrubber, changed: &changed) {
            return false
        }
        return true
    }

    /// One label of `scrub(_:with:changed:)`; false when its rule ended the series.
    private func scrub(label index: Int, of sample: PlainSample.Lent, with scrubber: PIIScrubber, changed: inout Bool) -> Bool {
        if case .drop = plainEdits[index] { return true }  // relabeled away
        let label = sample.labels[index]
        let value = sample.labelValue(label)
        guard !value.isEmpty else { return true }
        switch scrubber.outcome(name: sample.labelName(label), value: value) {
        case .keep:
            break
        case .replace(let replacement, let rule, let action):
            count(rule, action)
            if !replacement.withBytes({ ExpositionTokens.equal($0, value) }) {
                plainEdits[index] = replacement.count == 0 ? .drop : .replace(replacement)
                changed = true
            }
        case .dropLabel(let rule):
            count(rule, .drop)
            plainEdits[index] = .drop
            changed = true
        case .dropSeries(let rule):
            count(rule, .dropSeries)
            dropSeries(.pii, metric: sample.name)
            return false
        }
        return true
    }

    /// The rest of `filterPlainSample` for its labels as edited: the limits, the memo,
    /// admission and the structure check, and the line written.
    private func finishPlainSample(_ labels: PlainLabels, changed: Bool, into output: inout [UInt8]) {
        if let reason = labels.limitProblem(policy.limits) {
            dropSeries(reason, metric: labels.sample.name)
            return
        }
        if recording {
            rememberWrite(name: labels.sample.name, labels: labels, rewritten: changed, emptyValuesArePresent: labels.emptyIsPresent,
                          writeOutput: changed ? { labels.writeSeriesPart(into: &$0) } : nil)
        }
        guard !admits || admit(labels, name: labels.sample.name) else { return }
        let timestamp = plain.timestamp
        let verdict = structure.sample(
            name: labels.sample.name, labels: labels, value: format == .openMetrics ? ExpositionStructure.number(plain.value) : nil,
            time: timestamp.flatMap { ExpositionStructure.number($0) }, hasTimestamp: timestamp != nil,
            hasExemplar: false, rewritten: changed,
            render: { _, buffer in
                if changed {
                    labels.writeEdited(into: &buffer)
                } else {
                    buffer.append(contentsOf: labels.sample.line)
                    buffer.append(0x0A)
                }
            },
            into: &output)
        record(verdict, rewritten: changed, metric: Array(labels.sample.name))
    }

    /// The fast path for a plain sample under relabel rules that need the whole label
    /// set: the same decisions as `handle(_:original:into:)`, in the same order, on
    /// `RelabelLabels` loaded from the line instead of a parsed `Sample` and a
    /// `LabelSet`. A changed line is written as the full path writes it.
    private func filterRelabeledPlainSample(_ relabeler: Relabeler, into output: inout [UInt8]) {
        relabeled.beginLoading(line: plain.line, metricName: 0..<plain.name.count)
        for label in plain.labels {
            relabeled.addLoaded(nameAt: label.nameStart..<label.nameEnd, valueAt: label.valueStart..<label.valueEnd)
        }
        relabeled.endLoading()
        guard relabeler.apply(&relabeled) else {
            dropSeries(.relabel, metric: plain.name)
            return
        }
        if let scrubber, !scrubber.scrub(&relabeled, counts: &piiCounts) {
            dropSeries(.pii, metric: plain.name)
            return
        }
        if relabeled.isEmpty {
            dropSeries(.relabel, metric: plain.name)
            return
        }
        guard let nameRange = relabeled.metricName else {
            dropSeries(.missingMetricName, metric: plain.name)
            return
        }
        let labels = RelabeledLabels(labels: relabeled)
        labels.labels.bytes.withUnsafeBufferPointer { buffer in
            let name = UnsafeBufferPointer(rebasing: buffer[nameRange])
            // The line's own names are legacy names (`PlainSample` reads no other), which
            // every scraper takes. (A label name in the line is one of the line's names:
            // names set by rules are copied; a value may be, the metric name's included.)
            var valid = nameRange == 0..<plain.name.count || names.isValidMetricName(name)
            for slot in relabeled.slots where valid && !relabeled.isInLine(slot.name) {
                let labelName = UnsafeBufferPointer(rebasing: buffer[slot.name])
                valid = ExpositionTokens.equal(labelName, "__name__") || names.isValidLabelName(labelName)
            }
            guard valid else {
                dropSeries(.invalidName, metric: plain.name)
                return
            }
            if format == .openMetrics && !ExpositionTokens.equal(name, plain.name) {
                dropSeries(.renamedInOpenmetrics, metric: plain.name)
                return
            }
            if let reason = labels.limitProblem(policy.limits) {
                dropSeries(reason, metric: name)
                return
            }
            let changed = !relabeled.isUnchanged
            if recording {
                rememberWrite(name: name, labels: labels, rewritten: changed, emptyValuesArePresent: false,
                              writeOutput: changed ? { labels.writeSeriesPart(name: name, into: &$0) } : nil)
            }
            guard !admits || admit(labels, name: name) else { return }
            let timestamp = plain.timestamp
            let (line, valueAndTimestamp) = (plain.line, plain.valueAndTimestamp)
            let verdict = structure.sample(
                name: name, labels: labels, value: format == .openMetrics ? ExpositionStructure.number(plain.value) : nil,
                time: timestamp.flatMap { ExpositionStructure.number($0) }, hasTimestamp: timestamp != nil,
                hasExemplar: false, rewritten: changed,
                render: { _, buffer in
                    if changed {
                        labels.writeSeriesPart(name: name, into: &buffer)
                        buffer.append(UInt8(ascii: " "))
                        buffer.append(contentsOf: valueAndTimestamp)
                    } else {
                        buffer.append(contentsOf: line)
                    }
                    buffer.append(0x0A)
                },
                into: &output)
            record(verdict, rewritten: changed, metric: Array(plain.name))
        }
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
        let render = { (withExemplar: Bool, line: inout [UInt8]) in
            if unchanged && withExemplar == (exemplar != nil) {
                line.append(contentsOf: Self.trimmed(original))
                line.append(0x0A)
            } else {
                ExpositionWriter.write(name: name, labels: labels, value: sample.value, timestamp: sample.timestamp,
                                       exemplar: withExemplar ? exemplar : nil, into: &line)
            }
        }
        let verdict = structure.sample(name: name, labels: labels, value: sample.value, timestamp: sample.timestamp,
                                       hasExemplar: exemplar != nil, rewritten: !unchanged, render: render, into: &output)
        if case .write(exemplarRemoved: true) = verdict { unchanged = false }
        record(verdict, rewritten: !unchanged, metric: sample.name)
    }

    /// Counts the structure check's verdict on a sample (and the groups it dropped).
    private func record(_ verdict: ExpositionStructure.Verdict, rewritten: Bool, metric: @autoclosure () -> [UInt8]) {
        countDroppedGroups()
        switch verdict {
        case .write:
            counts.samplesOut += 1
            if rewritten { counts.samplesRewritten += 1 }
        case .drop(let reason):
            counts.drop(reason, metric: metric())
        }
    }

    static func exemplarRunes(_ exemplar: Exemplar) -> Int {
        exemplar.labels.reduce(0) { total, label in
            total + (label.name + label.value).reduce(0) { $0 + (($1 & 0xC0) != 0x80 ? 1 : 0) }
        }
    }

    /// Applies the PII policy; false when the series is dropped.
    private func scrub(_ labels: inout LabelSet, with scrubber: PIIScrubber, metric: [UInt8], exemplar: Bool = false) -> Bool {
        guard scrubber.scrub(&labels, counts: &piiCounts) else {
            if !exemplar { dropSeries(.pii, metric: metric) }
            return false
        }
        return true
    }

    private func count(_ rule: Int, _ action: PIIAction) {
        piiCounts.add(rule: rule, action: action)
    }

    /// Stable admission of the series' unit (its family and labels without `le` and
    /// `quantile`); false when refused.
    private func admit(_ labels: LabelSet, name: [UInt8]) -> Bool {
        let familyName = Self.family(of: name, current: family)
        let unitLabels = labels.labels.filter {
            $0.name != LabelSet.metricNameLabel && !$0.name.elementsEqual("le".utf8) && !$0.name.elementsEqual("quantile".utf8)
        }
        let values = policy.limits.valuesPerLabel == nil ? [] : unitLabels.map(SeriesTracker.ValueKey.init)
        return familyName.withUnsafeBufferPointer {
            let family = $0
            return name.withUnsafeBufferPointer {
                admit(SeriesTracker.UnitKey(familyName, unitLabels), family: family, values: values, metric: $0)
            }
        }
    }

    /// Admission of the plain sample's unit, as edited: the fingerprint of its family
    /// and labels without `le` and `quantile`, as on the full path.
    private func admit<Labels: MemoLabelSource>(_ labels: Labels, name: UnsafeBufferPointer<UInt8>) -> Bool {
        let familyName = Self.family(of: name, current: family)
        let unit = labels.fingerprint(name: familyName, excludingBuckets: true)
        unitValues.removeAll(keepingCapacity: true)
        if policy.limits.valuesPerLabel != nil {
            labels.forEachUnitValue { unitValues.append(SeriesTracker.ValueKey(name: $0, value: $1)) }
        }
        return admit(SeriesTracker.UnitKey(unit), family: familyName, values: unitValues, metric: name)
    }

    /// A refusal is counted as part of a run (`countDrop`): past a limit, the refused
    /// series of a family come one after another.
    private func admit(_ key: SeriesTracker.UnitKey, family: UnsafeBufferPointer<UInt8>, values: [SeriesTracker.ValueKey],
                       metric: UnsafeBufferPointer<UInt8>) -> Bool {
        switch admission?.admit(key, family: family, values: values, samplesSoFar: counts.samplesOut) {
        case .refused(let reason):
            countDrop(reason, metric: metric)
            return false
        case .admitted, nil:
            return true
        }
    }

    /// The family a sample belongs to: the current metadata's name when the sample's
    /// name is it or it with a type suffix, else the sample's own name.
    static func family(of name: [UInt8], current: [UInt8]?) -> [UInt8] {
        guard let current, name.starts(with: current), isFamilySuffix(name[current.count...]) else { return name }
        return current
    }

    /// Nothing, or a suffix a type adds to its family's name.
    private static func isFamilySuffix<Suffix: Collection<UInt8>>(_ suffix: Suffix) -> Bool {
        if suffix.isEmpty { return true }
        for candidate: StaticString in ["_bucket", "_sum", "_count", "_created", "_total", "_gcount", "_gsum", "_info"]
        where suffix.elementsEqual(UnsafeBufferPointer(start: candidate.utf8Start, count: candidate.utf8CodeUnitCount)) {
            return true
        }
        return false
    }
}
