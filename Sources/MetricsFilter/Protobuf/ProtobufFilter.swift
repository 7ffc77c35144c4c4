#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Filters the protobuf exposition (varint-delimited `io.prometheus.client.MetricFamily`
/// messages: what Prometheus asks for first when native histograms are on), chunk by
/// chunk, with the policy the text formats get. A `Metric` is the unit: its labels,
/// with `__name__` its family's name, go through relabeling, PII rules, the label and
/// admission limits and the duplicate check, as one series (a classic histogram's
/// buckets and a summary's quantiles are in it, a native histogram is one); the PII
/// rules also see the labels of its exemplars. What the policy does not touch goes out
/// as the bytes it came in: a metric nothing changed whole, a changed one field by
/// field (its values, native histogram spans and deltas, created timestamps, fields
/// unknown to this filter), a family's help, type, unit and unknown fields too.
///
/// A rule that renames `__name__` moves the metric to a family of its new name,
/// written after its own family with the same help, type and unit. A family longer
/// than `maximumFamilyLength` is dropped whole and counted, never buffered; a family
/// or metric that is not well-formed protobuf is dropped and counted, and fails the
/// scrape under `invalid_lines: fail_scrape`, as an unreadable line does.
///
/// With a `SeriesMemo`, a metric whose family, type and label fields an earlier
/// scrape decided has that decision replayed (`filterRemembered`).
///
/// Its per-metric state is `@exclusivity(unchecked)`, as `StreamingFilter`'s is and
/// for the same reason: only this class's own methods, on one thread, reach it.
///
/// One per scrape; not thread-safe. About 700 lines: a family, a metric and its
/// exemplars are read and rewritten together (the rewrite of one needs the verdict on
/// the others), and the memo's replay sits beside the full path it must agree with;
/// the wire format, the schema, the parts' shape and the family's writing are apart
/// (`ProtoWire`, `DelimitedSplitter`, `MetricMessages`, `MetricSchema`, `MetricShape`,
/// `FamilyWriter`).
public final class ProtobufFilter {
    public let names: NameEscaping
    private let policy: FilterPolicy
    private let relabeler: Relabeler?
    private let scrubber: PIIScrubber?
    private var splitter: DelimitedSplitter
    @exclusivity(unchecked) private var counts = FilterReport()
    @exclusivity(unchecked) private var piiCounts: PIICounts
    @exclusivity(unchecked) private var admission: ScrapeAdmission?
    /// The duplicate check: the series this scrape wrote.
    @exclusivity(unchecked) private var written: WrittenSeries
    /// Samples written so far as Prometheus counts them (`sample_limit`): a metric is
    /// as many as the series the text formats make of it.
    @exclusivity(unchecked) private var samplesWritten = 0
    /// The metric's top-level fields (`MetricSchema.readFields`), and the family being
    /// written (`FamilyWriter`): buffers kept from one metric and family to the next,
    /// while they are no larger than `keptBufferBytes`.
    @exclusivity(unchecked) private var fieldBuffer: [ProtoWire.Field] = []
    @exclusivity(unchecked) private var familyBuffer: [UInt8] = []
    /// A buffer larger than this goes back to the allocator after its metric or
    /// family: a scrape does not hold a large family's rewrite (up to twice
    /// `max_family_length`) to its end, against `server.max_buffered_bytes`.
    private static let keptBufferBytes = 1 << 20

    /// The decisions of earlier scrapes per metric (see `filterRemembered`), when given.
    private let memo: SeriesMemo?
    /// `memo` as each metric reaches it, without a retain and a release (see
    /// `StreamingFilter.memoPerLine`); `memo` keeps it alive.
    private let memoPerMetric: Unmanaged<SeriesMemo>?
    /// This scrape's place in the memo, and whether it has the memo alone.
    @exclusivity(unchecked) public private(set) var memoCursor: SeriesMemo.Cursor
    @exclusivity(unchecked) private var draft = MemoDraft()
    /// A metric's memo key: its family's (escaped) name and type, and its label fields
    /// as they came. (Whether it has a bucket or quantile is `Entry.structural`.) The
    /// family's part, its first `keyPrefixLength` bytes, is written once per family.
    @exclusivity(unchecked) private var key: [UInt8] = []
    @exclusivity(unchecked) private var keyPrefixLength = 0
    /// While a metric the memo did not know is filtered: its decision is written down.
    @exclusivity(unchecked) private var recording = false
    @exclusivity(unchecked) private var piiBefore: PIICounts?
    /// A remembered metric's admission value keys, kept between metrics.
    @exclusivity(unchecked) private var values: [SeriesTracker.ValueKey] = []
    /// Drops of one reason and metric in a row (see `DropRun`).
    @exclusivity(unchecked) private var dropRun = DropRun()

    /// - Parameters:
    ///   - names: how the scraper takes names that are not legacy names.
    ///   - tracker: the admission memory shared by the scrapes of this policy; needed
    ///     when the policy has a sample, series or label-value limit.
    ///   - memo: the decisions of earlier scrapes; this scrape uses and adds to them,
    ///     or only reads them when `sharingMemo` (see `StreamingFilter`'s).
    public init(policy: FilterPolicy, names: NameEscaping = .unspecified, tracker: SeriesTracker? = nil,
                memo: SeriesMemo? = nil, sharingMemo: Bool = false) {
        self.policy = policy
        self.names = names
        relabeler = policy.relabelRules.isEmpty ? nil : Relabeler(rules: policy.relabelRules)
        scrubber = policy.pii.isEmpty ? nil : PIIScrubber(policy: policy.pii)
        splitter = DelimitedSplitter(maximumMessageLength: policy.maximumFamilyLength)
        piiCounts = PIICounts(policy: policy.pii)
        let tracker = policy.limits.needsTracker ? (tracker ?? SeriesTracker(limits: policy.limits)) : nil
        admission = tracker.map { ScrapeAdmission(tracker: $0) }
        let memo = memo.flatMap { $0.budget > 0 ? $0 : nil }
        memoCursor = SeriesMemo.Cursor(exclusive: !sharingMemo)
        if !sharingMemo { memo?.beginScrape(policy: policy, format: nil, names: names) }
        self.memo = memo
        memoPerMetric = memo.map { Unmanaged.passUnretained($0) }
        // Fingerprints are kept for what the memo did not number (all, without numbers).
        let numbered = memo?.numberedSeries ?? 0
        written = WrittenSeries(numbered: numbered,
                                expectedOthers: max(0, (memo?.seriesWrittenLastScrape ?? 0) - numbered))
    }

    /// Whether an unreadable family or metric failed the scrape (`invalid_lines: fail_scrape`).
    public var failed: Bool { counts.failed }

    /// Bytes held until the scrape ends: the family being gathered, the duplicate
    /// check's table, the admission state, the buffers kept between families.
    public var retainedBytes: Int {
        splitter.retainedBytes + written.retainedBytes + (admission?.retainedBytes ?? 0) + familyBuffer.capacity
            + fieldBuffer.capacity * MemoryLayout<ProtoWire.Field>.stride
    }

    /// What this scrape's filter did so far. A "sample" here is a `Metric`.
    public var report: FilterReport {
        var report = counts
        dropRun.flush(into: &report)
        if let scrubber { piiCounts.add(to: &report, scrubber: scrubber) }
        return report
    }

    public func process(_ chunk: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        splitter.feed(chunk) { event in
            switch event {
            case .message(let family):
                filterFamily(family, into: &output)
            case .oversized:
                reject(.familyTooLarge)
            }
        }
    }

    public func process(_ chunk: [UInt8], into output: inout [UInt8]) {
        chunk.withUnsafeBytes { process($0, into: &output) }
    }

    /// The body ended: one that ended inside a family is counted (and fails the
    /// scrape under `fail_scrape`); what it held is not written.
    public func finish(into output: inout [UInt8]) -> FilterReport {
        if !splitter.finish() { reject(.truncatedMessage) }
        memo?.scrapeEnded(seriesWritten: written.count, memoCursor)
        return report
    }

    private func reject(_ reason: DropReason) {
        counts.reject(reason)
        if policy.invalidLines == .failScrape { counts.failed = true }
    }

    private func reject(unparsed error: ProtoWire.Malformed) {
        counts.reject(unparsed: String(error.reason.description.map { $0 == " " ? "_" : $0 }))
        if policy.invalidLines == .failScrape { counts.failed = true }
    }

    // MARK: Families

    /// What a family's first walk finds: its name and type, whether it has metrics.
    private struct FamilyHead {
        var name: [UInt8]?
        var type: UInt64 = 0
        var hasMetrics = false
    }

    private func filterFamily(_ family: UnsafeRawBufferPointer, into output: inout [UInt8]) {
        // Walked, never listed: a family of millions of tiny fields costs no memory.
        var head = FamilyHead()
        do throws(ProtoWire.Malformed) {
            var reader = ProtoWire.FieldReader(family)
            while let field = try reader.next() {
                switch (field.number, field.wireType) {
                case (MetricField.Family.name, .lengthDelimited):
                    head.name = Array(family.value(of: field))
                case (MetricField.Family.type, .varint):
                    var index = field.valueStart
                    head.type = try ProtoWire.varint(family, at: &index)
                case (MetricField.Family.metric, .lengthDelimited):
                    head.hasMetrics = true
                case (MetricField.Family.metric, _):
                    throw ProtoWire.Malformed(reason: "bad metric field")
                default:
                    break
                }
            }
        } catch {
            reject(unparsed: error)
            return
        }
        guard let name = head.name, !name.isEmpty, name.withUnsafeBufferPointer(GoUTF8.isValid) else {
            reject(unparsed: ProtoWire.Malformed(reason: "bad family name"))
            return
        }
        let familyName = names.metricName(name)
        let shape = MetricShape(familyType: head.type)
        if memo != nil {
            key.removeAll(keepingCapacity: true)
            key.append(contentsOf: familyName)
            key.append(0xFF)  // never in a name: UTF-8 has no 0xFF byte
            withUnsafeBytes(of: head.type.littleEndian) { key.append(contentsOf: $0) }
            keyPrefixLength = key.count
        }
        var buffer: [UInt8] = []
        swap(&buffer, &familyBuffer)  // the writer's alone: emptying it keeps its capacity
        var writer = FamilyWriter(family: family, buffer: buffer)
        var keptMetrics = 0
        var movedOrder: [[UInt8]] = []
        var moved: [[UInt8]: [[UInt8]]] = [:]
        // The first walk vouched for every field: this one cannot fail. Were it to,
        // the family would be refused rather than its rest written unfiltered.
        var reader = ProtoWire.FieldReader(family)
        while true {
            let next: ProtoWire.Field?
            do throws(ProtoWire.Malformed) { next = try reader.next() } catch {
                reject(unparsed: error)
                familyBuffer = writer.discard()
                return
            }
            guard let field = next else { break }
            guard field.number == MetricField.Family.metric else {
                if field.number == MetricField.Family.name && familyName != name {
                    writer.replace(field, number: MetricField.Family.name, length: familyName.count) {
                        $0.append(contentsOf: familyName)
                    }
                }
                continue
            }
            counts.samplesIn += 1
            switch filterMetric(field, of: family, family: familyName, shape: shape, writer: &writer) {
            case .drop:
                writer.remove(field)
                continue
            case .keep, .rewritten:
                break
            case .move(let newName, let metric):
                writer.remove(field)
                if moved[newName] == nil { movedOrder.append(newName) }
                moved[newName, default: []].append(metric)
                continue
            }
            keptMetrics += 1
        }
        // A family whose every metric is gone is not written: an empty family says nothing.
        if keptMetrics > 0 || !head.hasMetrics {
            familyBuffer = writer.finish(into: &output)
        } else {
            familyBuffer = writer.discard()
        }
        if familyBuffer.capacity > Self.keptBufferBytes { familyBuffer = [] }
        for newName in movedOrder {
            var movedFamily: [UInt8] = []
            ProtoWire.appendField(MetricField.Family.name, newName, to: &movedFamily)
            try? ProtoWire.forEachField(of: family) { field in
                if [MetricField.Family.help, MetricField.Family.type, MetricField.Family.unit].contains(field.number) {
                    movedFamily.append(contentsOf: family.whole(field))
                }
            }
            for metric in moved[newName] ?? [] { ProtoWire.appendField(MetricField.Family.metric, metric, to: &movedFamily) }
            ProtoWire.appendDelimited(movedFamily, to: &output)
        }
    }

    // MARK: Metrics

    private enum MetricOutcome {
        case drop
        case keep
        /// Written in its place in the family (`FamilyWriter.replace`).
        case rewritten
        /// Renamed by a rule: to a family of the new name.
        case move([UInt8], [UInt8])
    }

    private func filterMetric(_ field: ProtoWire.Field, of familyBytes: UnsafeRawBufferPointer, family: [UInt8],
                              shape: MetricShape, writer: inout FamilyWriter) -> MetricOutcome {
        let metric = familyBytes.value(of: field)
        // A metric is the protobuf's line: bounded alike, so that no one metric's
        // labels can cost more than a line's.
        guard metric.count <= policy.maximumLineLength else {
            reject(.metricTooLarge)
            return .drop
        }
        var fields: [ProtoWire.Field] = []
        swap(&fields, &fieldBuffer)  // the local's alone: reading into it allocates nothing
        defer { if fields.capacity * MemoryLayout<ProtoWire.Field>.stride <= Self.keptBufferBytes { fieldBuffer = fields } }
        do throws(ProtoWire.Malformed) {
            if let memoPerMetric {
                let outcome = memoPerMetric._withUnsafeGuaranteedRef { memo in
                    Result { () throws(ProtoWire.Malformed) in
                        try replayPredicted(metric, fields: &fields, family: family, shape: shape, memo: memo,
                                            place: field, writer: &writer)
                    }
                }
                if let outcome = try outcome.get() { return outcome }
            }
            try MetricSchema.readFields(of: metric, into: &fields)
            guard let memoPerMetric else {
                let hasExemplar = try MetricSchema.validateInside(metric, fields: fields, skippingLabels: false)
                return try filterMetricFields(metric, fields: fields, hasExemplar: hasExemplar, family: family,
                                              shape: shape, place: field, writer: &writer)
            }
            let outcome = memoPerMetric._withUnsafeGuaranteedRef { memo in
                Result { () throws(ProtoWire.Malformed) in
                    try filterRemembered(metric, fields: fields, family: family, shape: shape, memo: memo,
                                         place: field, writer: &writer)
                }
            }
            return try outcome.get()
        } catch {
            reject(unparsed: error)
            return .drop
        }
    }

    /// `fields`: the metric's top-level fields, as its schema check gave them;
    /// `hasExemplar`: whether the check met one. `place`: the metric's field in the
    /// family that `writer` writes.
    private func filterMetricFields(_ metric: UnsafeRawBufferPointer, fields: [ProtoWire.Field], hasExemplar: Bool,
                                    family: [UInt8], shape: MetricShape, place: ProtoWire.Field,
                                    writer: inout FamilyWriter) throws(ProtoWire.Malformed) -> MetricOutcome {
        let appLabels = try MetricMessages.labels(of: metric, fields: fields, number: MetricField.Metric.label)
        let read = appLabels.map { Label(name: names.labelName($0.name), value: $0.value) }
        let escaped = read != appLabels
        if Self.namesClash(read) {
            // Two labels of one name, or a label called `__name__` (the family's name is it).
            guard escaped else { throw ProtoWire.Malformed(reason: "duplicate label") }
            dropSeries(.escapedNameClash, metric: family)
            return .drop
        }
        let (samples, structuralLabel) = try shape.samples(of: metric, fields: fields)
        if recording { draft.entry.structural = structuralLabel ? 2 : 1 }
        var labels = LabelSet(labels: read + [Label(name: LabelSet.metricNameLabel, value: family)])
        let before = labels
        if let relabeler {
            let kept = relabeler.apply(&labels)
            guard partsAgree(read, family: family, parts: shape.partSuffixes, outcome: kept ? labels : nil,
                             relabeler: relabeler) else {
                dropSeries(.partsRelabeledApart, metric: family)
                return .drop
            }
            guard kept else {
                dropSeries(.relabel, metric: family)
                return .drop
            }
        }
        if let scrubber, !scrubber.scrub(&labels, counts: &piiCounts) {
            dropSeries(.pii, metric: family)
            return .drop
        }
        guard !labels.isEmpty else {
            dropSeries(.relabel, metric: family)
            return .drop
        }
        guard let name = labels.metricName else {
            dropSeries(.missingMetricName, metric: family)
            return .drop
        }
        let output = labels.labels.filter { $0.name != LabelSet.metricNameLabel }
        let changed = labels != before || escaped
        // What the exemplars' PII rules count is not the series' decision.
        let piiOfLabels = piiDelta
        // Every check that can fail comes before the series is admitted and recorded.
        let exemplars = try scrubExemplars(metric, fields: fields, hasExemplar: hasExemplar)
        if let reason = limitProblem(name: name, labels: output, structuralLabel: structuralLabel) {
            name.withUnsafeBufferPointer { countDrop(reason, metric: $0) }
            if recording { name.withUnsafeBufferPointer { draft.drop(reason, metric: $0, pii: piiOfLabels) } }
            return .drop
        }
        // Each once: the memo's draft, admission, the duplicate check and the rewrite use them.
        let series = SeriesFingerprint(name: name, labels: output)
        let valueKeys = policy.limits.valuesPerLabel == nil || admission == nil
            ? [] : output.map(SeriesTracker.ValueKey.init)
        var labelPairs: [UInt8] = []
        if changed || exemplars != nil {
            MetricMessages.appendLabelPairs(output, field: MetricField.Metric.label, to: &labelPairs)
        }
        if recording {
            name.withUnsafeBufferPointer { buffer in
                draft.write(name: buffer, labels: output, rewritten: changed, emptyValuesArePresent: false, pii: piiOfLabels,
                            valueKeys: valueKeys.isEmpty ? .none : .these(valueKeys), keepsLabels: false,
                            // Unchanged labels are not kept twice: a rewrite (for its
                            // exemplars) reads them again from the metric.
                            writeOutput: changed ? { $0.append(contentsOf: labelPairs) } : nil)
            }
        }
        if let reason = name.withUnsafeBufferPointer({
            admit(SeriesTracker.UnitKey(series), name: $0, values: valueKeys, samples: samples)
        }) {
            name.withUnsafeBufferPointer { countDrop(reason, metric: $0) }
            return .drop
        }
        guard written.insert(series, number: memo?.seriesNumber(for: series)) else {
            name.withUnsafeBufferPointer { countDrop(.duplicate, metric: $0) }
            return .drop
        }
        counts.samplesOut += 1
        guard changed || exemplars != nil else { return .keep }
        counts.samplesRewritten += 1
        return labelPairs.withUnsafeBytes {
            rewrite(metric, fields: fields, labelPairs: $0, exemplars: exemplars, name: name, family: family, place: place,
                    writer: &writer)
        }
    }

    /// The new label pairs, then every other field as it came (or as the exemplars'
    /// rewrite left it): written in the metric's place, or moved when the name is not
    /// the family's.
    private func rewrite(_ metric: UnsafeRawBufferPointer, fields: [ProtoWire.Field], labelPairs: UnsafeRawBufferPointer,
                         exemplars: [UInt8]?, name: some Collection<UInt8>, family: [UInt8], place: ProtoWire.Field,
                         writer: inout FamilyWriter) -> MetricOutcome {
        let moved = !name.elementsEqual(family)
        guard exemplars == nil, !moved else {
            var rewritten = Array(labelPairs)
            if let exemplars {
                MetricMessages.appendFields(of: exemplars, except: MetricField.Metric.label, to: &rewritten)
            } else {
                for field in fields where field.number != MetricField.Metric.label {
                    rewritten.append(contentsOf: metric.whole(field))
                }
            }
            if moved { return .move(Array(name), rewritten) }
            writer.replace(place, number: MetricField.Family.metric, length: rewritten.count) { $0.append(contentsOf: rewritten) }
            return .rewritten
        }
        // The common case, with no copy in between: the length first, then the parts.
        var length = labelPairs.count
        for field in fields where field.number != MetricField.Metric.label { length += field.end - field.start }
        writer.replace(place, number: MetricField.Family.metric, length: length) { output in
            output.append(contentsOf: labelPairs)
            for field in fields where field.number != MetricField.Metric.label {
                output.append(contentsOf: metric.whole(field))
            }
        }
        return .rewritten
    }

    // MARK: The memo

    /// A metric through the memo: one whose family, type and label fields an earlier
    /// scrape decided has that decision replayed, in the order filtering it in full
    /// takes (so a malformed part is refused as it would be); the checks that depend
    /// on the rest of the metric or the scrape run as before: its schema, its samples,
    /// its exemplars, admission, the duplicate check. Any other metric is filtered in
    /// full and its decision written down. A remembered metric's label pairs are not
    /// checked again (`validateInside` skips them): their bytes are in its key, those
    /// of a metric whose check passed.
    private func filterRemembered(_ metric: UnsafeRawBufferPointer, fields: [ProtoWire.Field], family: [UInt8],
                                  shape: MetricShape, memo: SeriesMemo, place: ProtoWire.Field,
                                  writer: inout FamilyWriter) throws(ProtoWire.Malformed) -> MetricOutcome {
        key.removeSubrange(keyPrefixLength...)
        for field in fields where field.number == MetricField.Metric.label { key.append(contentsOf: metric.whole(field)) }
        // The metric that followed the last one in the last scrape, else by hash.
        let (found, hash): (Int32?, UInt64) = key.withUnsafeBufferPointer { key in
            let predicted = memo.predicted(after: memoCursor)
            if predicted >= 0, memo.hasKey(predicted, key) { return (predicted, 0) }
            let hash = memo.hash(of: key)
            return (memo.find(key, hash: hash), hash)
        }
        guard let number = found else {
            let hasExemplar = try MetricSchema.validateInside(metric, fields: fields, skippingLabels: false)
            recording = memo.takesMore(memoCursor)
            defer { recording = false }
            if recording {
                key.withUnsafeBufferPointer { draft.start(key: $0) }
                piiBefore = scrubber == nil ? nil : piiCounts
            } else {
                piiBefore = nil  // no PII delta to work out for a decision not written down
                memo.passedOver(&memoCursor)
            }
            let outcome = try filterMetricFields(metric, fields: fields, hasExemplar: hasExemplar, family: family,
                                                 shape: shape, place: place, writer: &writer)
            if recording, draft.decided {
                key.withUnsafeBufferPointer { _ = memo.remember(key: $0, hash: hash, draft: &draft, &memoCursor) }
            }
            return outcome
        }
        return try replay(number, metric, fields: fields, labelsRead: true, family: family, shape: shape, memo: memo,
                          place: place, writer: &writer)
    }

    /// The metric the memo predicts, when it is that one: its label fields are the
    /// predicted entry's, byte for byte, at its start (where client libraries write
    /// them), and no label field follows. Then only the fields after them are read
    /// (`fields`), and the decision replayed; nil when it is not the predicted metric
    /// (it is then read whole and looked up as any other: the predicted entry's whole
    /// key first, then by hash).
    ///
    /// The same metric by its bytes: its key (family, type, label fields) is the
    /// entry's; the label fields, which parse alike wherever they stand, are those of a
    /// metric whose check passed, so the first field that can be malformed is after
    /// them, as it is on the full path.
    private func replayPredicted(_ metric: UnsafeRawBufferPointer, fields: inout [ProtoWire.Field], family: [UInt8],
                                 shape: MetricShape, memo: SeriesMemo, place: ProtoWire.Field,
                                 writer: inout FamilyWriter) throws(ProtoWire.Malformed) -> MetricOutcome? {
        let predicted = memo.predicted(after: memoCursor)
        guard predicted >= 0 else { return nil }
        // The entry's key: this family's part (`key`'s first bytes), then its label fields.
        let entryKey = memo.bytes(predicted).key
        let labelsStart = keyPrefixLength
        guard entryKey.count >= labelsStart,
              key.withUnsafeBufferPointer({ memcmp($0.baseAddress!, entryKey.baseAddress!, labelsStart) == 0 })
        else { return nil }
        let labelsLength = entryKey.count - labelsStart
        guard metric.count >= labelsLength,
              labelsLength == 0 || memcmp(metric.baseAddress!, entryKey.baseAddress! + labelsStart, labelsLength) == 0
        else { return nil }
        try MetricSchema.readFields(of: metric, from: labelsLength, into: &fields)
        guard !fields.contains(where: { $0.number == MetricField.Metric.label }) else { return nil }
        return try replay(predicted, metric, fields: fields, labelsRead: false, family: family, shape: shape, memo: memo,
                          place: place, writer: &writer)
    }

    /// A remembered metric's decision replayed (see `filterRemembered`). `fields`: the
    /// metric's fields, its label fields among them only when `labelsRead` (the
    /// predicted metric's are known by their bytes; the two rare turns that read the
    /// labels read the fields again).
    private func replay(_ number: Int32, _ metric: UnsafeRawBufferPointer, fields: [ProtoWire.Field], labelsRead: Bool,
                        family: [UInt8], shape: MetricShape, memo: SeriesMemo, place: ProtoWire.Field,
                        writer: inout FamilyWriter) throws(ProtoWire.Malformed) -> MetricOutcome {
        let hasExemplar = try MetricSchema.validateInside(metric, fields: fields, skippingLabels: true)
        let remembered = memo.bytes(number)
        let entry = remembered.entry
        let name = remembered.name
        if entry.dropReason == .escapedNameClash {
            memo.touch(number, &memoCursor)
            countDrop(.escapedNameClash, metric: name)
            return .drop
        }
        let (samples, structuralLabel) = try shape.samples(of: metric, fields: fields)
        guard entry.structural == 0 || (entry.structural == 2) == structuralLabel else {
            // Decided for a metric with (or without) a bucket or quantile: not this one.
            return try filterMetricFields(metric, fields: labelsRead ? fields : try Self.allFields(of: metric),
                                          hasExemplar: hasExemplar, family: family, shape: shape, place: place,
                                          writer: &writer)
        }
        memo.touch(number, &memoCursor)
        remembered.forEachPIICount { piiCounts.add(index: $0, count: $1) }
        if let reason = entry.dropReason {
            switch reason {
            case .invalidName, .labelLimit, .labelValueLengthLimit:
                break  // decided after the exemplars: they are read (and may be refused) first
            default:
                countDrop(reason, metric: name)
                return .drop
            }
        }
        let exemplars = try scrubExemplars(metric, fields: fields, hasExemplar: hasExemplar)
        if let reason = entry.dropReason {
            countDrop(reason, metric: name)
            return .drop
        }
        if admission != nil {
            values.removeAll(keepingCapacity: true)
            remembered.forEachValueKey { values.append($0) }
            if let reason = admit(SeriesTracker.UnitKey(entry.series), name: name, values: values, samples: samples) {
                countDrop(reason, metric: name)
                return .drop
            }
        }
        guard written.insert(entry.series, number: memo.seriesNumber(ofEntry: number, series: entry.series)) else {
            countDrop(.duplicate, metric: name)
            return .drop
        }
        counts.samplesOut += 1
        guard entry.rewritten || exemplars != nil else { return .keep }
        counts.samplesRewritten += 1
        if entry.rewritten {
            return rewrite(metric, fields: fields, labelPairs: UnsafeRawBufferPointer(remembered.output),
                           exemplars: exemplars, name: name, family: family, place: place, writer: &writer)
        }
        // Its labels as the full path writes unchanged ones: sorted, empty values out.
        var labelPairs: [UInt8] = []
        let read = try MetricMessages.labels(of: metric, fields: labelsRead ? fields : try Self.allFields(of: metric),
                                             number: MetricField.Metric.label)
        MetricMessages.appendLabelPairs(LabelSet(labels: read).labels, field: MetricField.Metric.label, to: &labelPairs)
        return labelPairs.withUnsafeBytes {
            rewrite(metric, fields: fields, labelPairs: $0, exemplars: exemplars, name: name, family: family, place: place,
                    writer: &writer)
        }
    }

    /// Every top-level field of a metric whose fields after its labels were read
    /// (its labels are a checked entry's): this cannot fail, and were it to, the
    /// metric would be refused, never passed on with labels the policy did not see.
    private static func allFields(of metric: UnsafeRawBufferPointer) throws(ProtoWire.Malformed) -> [ProtoWire.Field] {
        var fields: [ProtoWire.Field] = []
        try MetricSchema.readFields(of: metric, into: &fields)
        return fields
    }

    /// The PII counts the metric being recorded added to its labels.
    private var piiDelta: PIICounts.Delta {
        piiBefore.map { piiCounts.delta(since: $0) } ?? .none
    }

    /// Counts a dropped series as part of a run (see `dropRun`).
    private func countDrop(_ reason: DropReason, metric: UnsafeBufferPointer<UInt8>) {
        dropRun.add(reason, metric: metric, to: &counts)
    }

    /// A metric dropped before its exemplars are read: counted, and written down when
    /// recording.
    private func dropSeries(_ reason: DropReason, metric: [UInt8]) {
        metric.withUnsafeBufferPointer { countDrop(reason, metric: $0) }
        if recording { metric.withUnsafeBufferPointer { draft.drop(reason, metric: $0, pii: piiDelta) } }
    }

    /// Whether two labels have one name, or one is called `__name__` (the family's name
    /// is it). A metric's labels are few: compared pairwise, they need no sorted copy.
    private static func namesClash(_ labels: [Label]) -> Bool {
        guard labels.count <= 32 else {
            let sorted = (labels.map(\.name) + [LabelSet.metricNameLabel]).sorted { $0.lexicographicallyPrecedes($1) }
            return zip(sorted, sorted.dropFirst()).contains { $0.0 == $0.1 }
        }
        for (position, label) in labels.enumerated() {
            if label.name == LabelSet.metricNameLabel { return true }
            for other in labels[(position + 1)...] where other.name == label.name { return true }
        }
        return false
    }

    /// Whether the rules treat every part of a histogram or summary as they treat the
    /// whole (`outcome`: the family name's result, nil when dropped): each part is
    /// kept or dropped alike, with the same labels and its name the whole's plus its
    /// suffix. One message cannot carry part of a histogram, so parts relabeled apart
    /// drop the metric, counted (`parts_relabeled_apart`), rather than keep what a
    /// rule dropped.
    private func partsAgree(_ read: [Label], family: [UInt8], parts: [[UInt8]], outcome: LabelSet?,
                            relabeler: Relabeler) -> Bool {
        let wholeName = outcome?.metricName ?? []
        let wholeLabels = outcome?.labels.filter { $0.name != LabelSet.metricNameLabel }
        for suffix in parts {
            var part = LabelSet(labels: read + [Label(name: LabelSet.metricNameLabel, value: family + suffix)])
            let kept = relabeler.apply(&part)
            guard kept == (outcome != nil) else { return false }
            guard kept else { continue }
            guard part.metricName == wholeName + suffix,
                  part.labels.filter({ $0.name != LabelSet.metricNameLabel }) == wholeLabels else { return false }
        }
        return true
    }

    /// Why a series the rules kept is still not written, before admission: a name the
    /// scraper cannot take, or a label limit; nil when it may go on.
    private func limitProblem(name: [UInt8], labels: [Label], structuralLabel: Bool) -> DropReason? {
        guard names.isValidMetricName(name), labels.allSatisfy({ names.isValidLabelName($0.name) }) else {
            return .invalidName
        }
        // The text formats count a bucket's `le` or a quantile's `quantile` too.
        if let limit = policy.limits.labelLimit, labels.count + (structuralLabel ? 1 : 0) > limit { return .labelLimit }
        if let limit = policy.limits.labelValueLengthLimit, labels.contains(where: { $0.value.count > limit }) {
            return .labelValueLengthLimit
        }
        return nil
    }

    private func admit(_ key: SeriesTracker.UnitKey, name: UnsafeBufferPointer<UInt8>, values: [SeriesTracker.ValueKey],
                       samples: Int) -> DropReason? {
        let verdict = admission?.admit(key, family: name, values: values, samplesSoFar: samplesWritten, samples: samples)
        if case .refused(let reason)? = verdict { return reason }
        samplesWritten += samples
        return nil
    }

    // MARK: Exemplars

    /// The metric with its exemplars' labels through the PII rules (a counter's
    /// exemplar, a histogram's per-bucket and native exemplars); nil when no exemplar
    /// changed (and without a walk when the schema check met none). An exemplar a rule
    /// would drop the series for is taken off.
    private func scrubExemplars(_ metric: UnsafeRawBufferPointer, fields: [ProtoWire.Field],
                                hasExemplar: Bool) throws(ProtoWire.Malformed) -> [UInt8]? {
        guard hasExemplar, scrubber != nil || !names.keepsUTF8,
              fields.contains(where: { $0.number == MetricField.Metric.counter || $0.number == MetricField.Metric.histogram })
        else { return nil }
        return try MetricMessages.rewrite(metric, fields: [MetricField.Metric.counter, MetricField.Metric.histogram]) {
            number, value throws(ProtoWire.Malformed) in
            let exemplarFields: [Int] = number == MetricField.Metric.counter
                ? [MetricField.counterExemplar] : [MetricField.histogramExemplars, MetricField.histogramBucket]
            let rewritten = try MetricMessages.rewrite(value, fields: exemplarFields) { inner, payload throws(ProtoWire.Malformed) in
                if number == MetricField.Metric.histogram && inner == MetricField.histogramBucket {
                    let bucket = try MetricMessages.rewrite(payload, fields: [MetricField.bucketExemplar]) { _, exemplar throws(ProtoWire.Malformed) in
                        try self.scrubExemplar(exemplar)
                    }
                    return bucket.map { .replace($0) } ?? .keep
                }
                return try self.scrubExemplar(payload)
            }
            return rewritten.map { .replace($0) } ?? .keep
        }
    }

    private func scrubExemplar(_ exemplar: UnsafeRawBufferPointer) throws(ProtoWire.Malformed) -> MetricMessages.FieldEdit {
        let fields = try ProtoWire.fields(of: exemplar)
        let read = try MetricMessages.labels(of: exemplar, fields: fields, number: MetricField.exemplarLabel)
        let escaped = read.map { Label(name: names.labelName($0.name), value: $0.value) }
        // Names that escaping made one: the exemplar cannot be written (as on the text path).
        guard Set(escaped.map(\.name)).count == escaped.count else { return .remove }
        var labels = LabelSet(labels: escaped)
        let before = labels
        if let scrubber, !scrubber.scrub(&labels, counts: &piiCounts) { return .remove }
        guard labels != before || escaped != read else { return .keep }
        var rewritten: [UInt8] = []
        MetricMessages.appendLabelPairs(labels.labels, field: MetricField.exemplarLabel, to: &rewritten)
        for field in fields where field.number != MetricField.exemplarLabel {
            rewritten.append(contentsOf: exemplar.whole(field))
        }
        return .replace(rewritten)
    }
}
