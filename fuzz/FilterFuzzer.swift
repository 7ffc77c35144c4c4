// libFuzzer target over the exposition scanner (ExpositionParser, LineSplitter) and
// the streaming filter (StreamingFilter with relabeling, PII rules and series limits).
//
// Built by fuzz/build.sh into one executable together with Sources/MetricsFilter
// (same module, so no `import MetricsFilter`); it uses only the public API.
//
// Input layout:
//   byte 0  control
//           bit 0     format: 0 text 0.0.4, 1 OpenMetrics
//           bits 1-3  policy (see `fuzzPolicies`)
//           bit 4     small maximum line length (48 bytes): exercises oversized lines
//           bit 5     invalid lines fail the scrape
//           bit 6     chunk plan: 0 fixed size, 1 pseudo-random sizes 0...16 (empty chunks too)
//           bit 7     label_limit 4 and label_value_length_limit 24 too
//   byte 1  chunk size - 1 (fixed plan) or the seed of the random plan
//   rest    the exposition body; when it starts with `#~`, that first line instead
//           draws relabel rules from a grammar of Go/RE2 regex syntax (`RegexGrammar`),
//           which replace the policy's relabel rules; when it starts with `#P`, the
//           rest is a delimited protobuf body for `ProtobufFilter` (bit 0 then picks
//           UTF-8 names or `underscores`, bit 4 a 64-byte family bound)
//
// Every violated invariant prints what it saw and traps (fatalError), which libFuzzer
// reports as a crash and saves as an artifact.

// MARK: Policies

private func rule(_ fields: RelabelRule.Fields) -> RelabelRule {
    do {
        return try RelabelRule(fields)
    } catch {
        fatalError("fuzz harness: invalid relabel rule: \(error)")
    }
}

private func regex(_ pattern: String) -> RelabelRegex {
    do {
        return try RelabelRegex(pattern)
    } catch {
        fatalError("fuzz harness: invalid regex: \(error)")
    }
}

/// The rules the issue names: replace, labeldrop, keep, hashmod, labelmap. Most
/// samples pass unchanged; some are rewritten, some dropped.
private let mixedRules: [RelabelRule] = [
    rule(.init(action: "replace", sourceLabels: ["job", "instance"], separator: ":", targetLabel: "origin",
               regex: "(.+):(.+)", replacement: "$2@$1")),
    rule(.init(action: "replace", sourceLabels: ["__name__"], targetLabel: "__name__",
               regex: "legacy_(.+)", replacement: "modern_$1")),
    rule(.init(action: "hashmod", sourceLabels: ["__name__", "le"], targetLabel: "__tmp_shard", modulus: 3)),
    rule(.init(action: "keep", sourceLabels: ["__tmp_shard"], regex: "[12]")),
    rule(.init(action: "labelmap", regex: "meta_(.+)", replacement: "m_$1")),
    rule(.init(action: "labeldrop", regex: "__tmp_.*|tmp_.*|pod_uid")),
]

/// Edge cases: templated target labels, names taken from label values (may be
/// invalid), values that need escaping, case mapping, drop, labelkeep, labelmap onto
/// existing labels.
private let edgeRules: [RelabelRule] = [
    rule(.init(action: "replace", sourceLabels: ["dyn"], targetLabel: "${1}",
               regex: "([a-zA-Z_]+)=(.*)", replacement: "$2")),
    rule(.init(action: "replace", sourceLabels: ["rename"], targetLabel: "__name__", regex: "(.+)", replacement: "$1")),
    rule(.init(action: "replace", sourceLabels: ["q"], targetLabel: "esc", regex: "(.*)x(.*)",
               replacement: "\"\\\n$1$2")),
    rule(.init(action: "uppercase", sourceLabels: ["method"], targetLabel: "method")),
    rule(.init(action: "lowercase", sourceLabels: ["__name__", "code"], targetLabel: "lc")),
    rule(.init(action: "drop", sourceLabels: ["__name__"], regex: ".*_drop")),
    rule(.init(action: "labelkeep", regex: "__name__|le|quantile|[a-z].*")),
    rule(.init(action: "labelmap", regex: "(.+)_orig", replacement: "$1")),
]

/// Collapses series onto each other: only the name survives, so most samples are
/// duplicates; and drops some by name. Rules that decide by names alone: the filter's
/// fast path applies them in place.
private let collapseRules: [RelabelRule] = [
    rule(.init(action: "labeldrop", regex: "[^_].*")),
    rule(.init(action: "drop", sourceLabels: ["__name__"], regex: "x.*|.*_drop")),
]

/// Rules that decide by names alone, beside PII rules: the fast path's relabeling.
private let nameRules: [RelabelRule] = [
    rule(.init(action: "labeldrop", regex: "pod_uid|tmp_.*|password")),
    rule(.init(action: "drop", sourceLabels: ["__name__"], regex: "x.*|.*_drop")),
    rule(.init(action: "labelkeep", regex: "__name__|le|quantile|[a-z].*")),
    rule(.init(action: "keep", sourceLabels: ["__name__"], regex: "[^y].*")),
]

private let piiPolicy = PIIPolicy(
    labelRules: [
        .init(name: "secret", labelNames: ["password", "token"], action: .redact),
        .init(name: "user", labelRegex: regex("user(_.*)?|.*_id"), action: .hash),
        .init(name: "session", labelNames: ["session"], action: .dropSeries),
        .init(name: "ip", labelNames: ["client_ip"], action: .drop),
    ],
    detectorRules: [
        .init(name: "email", detector: .email, action: .drop),
        .init(name: "ipv4", detector: .ipv4, action: .redact),
        .init(name: "ipv6", detector: .ipv6, action: .hash),
        .init(name: "card", detector: .card, action: .hash),
        .init(name: "bearer", detector: .bearer, action: .dropSeries),
        .init(name: "jwt", detector: .jwt, action: .redact),
    ],
    marker: "redacted",
    hashKey: Array("fuzz-hmac-key".utf8))

/// The same rules with none that ends a series, and a marker that must be escaped:
/// the fast path then meets a line's labels in its own order, not in name order.
private let piiPolicyKeepingSeries: PIIPolicy = {
    var policy = piiPolicy
    policy.labelRules = policy.labelRules.map { var rule = $0; if rule.action == .dropSeries { rule.action = .drop }; return rule }
    policy.detectorRules = policy.detectorRules.map { var rule = $0; if rule.action == .dropSeries { rule.action = .hash }; return rule }
    policy.marker = Array(#"re"da\cted"#.utf8)
    return policy
}()

private let limits = SeriesLimits(labelLimit: 4, labelValueLengthLimit: 24, sampleLimit: 40, seriesPerMetric: 6,
                                  valuesPerLabel: 10)

/// Indexed by bits 1-3 of the control byte.
private let fuzzPolicies: [(name: String, policy: FilterPolicy)] = [
    ("identity", FilterPolicy()),
    ("relabel-mixed", FilterPolicy(relabelRules: mixedRules)),
    ("relabel-edge", FilterPolicy(relabelRules: edgeRules)),
    ("relabel-collapse", FilterPolicy(relabelRules: collapseRules)),
    ("pii", FilterPolicy(pii: piiPolicyKeepingSeries)),
    ("limits", FilterPolicy(limits: limits)),
    ("relabel-names+pii", FilterPolicy(relabelRules: nameRules, pii: piiPolicy)),
    ("relabel-mixed+pii+limits", FilterPolicy(relabelRules: mixedRules, pii: piiPolicy, limits: limits)),
]

// MARK: Regex rules from a grammar

/// Relabel rules whose regexes are drawn, byte by byte, from a grammar of the syntax
/// Go's regexp reads (literals incl. non-ASCII and case-fold pairs, classes, Perl
/// and Unicode classes, escapes, octal, `\Q…\E`, anchors, flags, groups named and
/// not, alternation, greedy and lazy repeats), so that the fuzzer reaches RE2 and
/// the Go syntax checks in front of it, and both filter paths must still agree.
private struct RegexGrammar {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
    }

    private mutating func pick<T>(_ choices: [T]) -> T {
        choices[Int(bytes.popFirst() ?? 0) % choices.count]
    }

    private static let atoms = [
        "a", "b", "x", "_", "1", "é", "ſ", "s", "K", "\u{212A}", "Σ", "σ", "ς", ".", "\\.", "-", "\\$", "/",
    ]
    private static let classes = [
        "[a-c]", "[^x]", "[[:alpha:]]", "[[:upper:]]", "[[:^digit:]]", "\\d", "\\w", "\\s", "\\D", "\\W",
        "\\pL", "\\p{Greek}", "\\PL", "\\p{Lu}", "[\\d_]", "[]a]", "[^]a]", "\\x41", "\\x{e9}", "\\141",
        "\\v", "\\t", "\\Q.*\\E", "\\0", "(?i)k",
    ]
    private static let anchors = ["^", "$", "\\A", "\\z", "\\b", "\\B"]
    private static let repeats = ["*", "+", "?", "{2}", "{1,3}", "{0,}", "*?", "+?", "??", "{2,}?", "{0}"]
    private static let flags = ["(?i)", "(?s)", "(?U)", "(?m)", "(?i-s)", "(?-i)"]
    private static let groupOpeners = ["(", "(?:", "(?P<n>", "(?<n>", "(?P<g_2>", "(?i:", "(?s:", "(?U:"]

    mutating func expression(depth: Int = 0) -> String {
        switch Int(bytes.popFirst() ?? 0) % (depth >= 3 ? 4 : 9) {
        case 0: return pick(Self.atoms)
        case 1: return pick(Self.classes)
        case 2: return pick(Self.anchors)
        case 3: return pick(Self.atoms) + pick(Self.atoms)
        case 4: return expression(depth: depth + 1) + expression(depth: depth + 1)
        case 5: return pick(Self.flags) + expression(depth: depth + 1)
        case 6: return pick(Self.groupOpeners) + expression(depth: depth + 1) + ")"
        case 7: return expression(depth: depth + 1) + "|" + expression(depth: depth + 1)
        default: return "(?:" + expression(depth: depth + 1) + ")" + pick(Self.repeats)
        }
    }

    /// Up to three rules, each with a drawn regex; a rule whose drawn regex is
    /// refused (by the Go checks or by RE2) is left out.
    mutating func rules() -> [RelabelRule] {
        var rules: [RelabelRule] = []
        for _ in 0..<(1 + Int(bytes.popFirst() ?? 0) % 3) {
            let pattern = expression()
            let semantics = pick(RelabelSemantics.allCases)
            var fields = RelabelRule.Fields(regex: pattern)
            switch pick(["drop", "keep", "replace", "labelmap", "labeldrop", "labelkeep"]) {
            case "drop": fields.action = "drop"; fields.sourceLabels = pick([["__name__"], ["a"], ["__name__", "le"]])
            case "keep": fields.action = "keep"; fields.sourceLabels = pick([["__name__"], ["b"], ["a", "b"]])
            case "replace":
                fields.action = "replace"
                fields.sourceLabels = pick([["__name__"], ["a"], ["a", "b"]])
                fields.targetLabel = pick(["t", "__name__", "a", "${n}", "x$1"])
                fields.replacement = pick(["$1", "${n}_$0", "v", "", "$$1"])
            case "labelmap": fields.action = "labelmap"; fields.replacement = pick(["m_$1", "$0", "${n}"])
            case "labeldrop": fields.action = "labeldrop"
            default: fields.action = "labelkeep"
            }
            if let rule = try? RelabelRule(fields, semantics: semantics) { rules.append(rule) }
        }
        return rules
    }
}

// MARK: Running the filter

private enum ChunkPlan: CustomStringConvertible {
    case whole
    case fixed(Int)
    case random(seed: UInt8)

    var description: String {
        switch self {
        case .whole: return "one chunk"
        case .fixed(let size): return "chunks of \(size)"
        case .random(let seed): return "random chunks 0...16 (seed \(seed))"
        }
    }

    /// The chunk sizes for a body of `count` bytes; they add up to `count`.
    func sizes(_ count: Int) -> [Int] {
        switch self {
        case .whole:
            return [count]
        case .fixed(let size):
            return stride(from: 0, to: count, by: size).map { min(size, count - $0) }
        case .random(let seed):
            var state = UInt32(seed) &* 2_654_435_761 | 1
            var sizes: [Int] = []
            var left = count
            while left > 0 {
                state ^= state << 13
                state ^= state >> 17
                state ^= state << 5
                let size = min(Int(state % 17), left)
                sizes.append(size)
                left -= size
            }
            sizes.append(0)
            return sizes
        }
    }
}

/// Runs the filter; by default for a scraper that takes UTF-8 names, so that what the
/// invariants compare is the app's names (the escaped run has its own check).
private func runFilter(_ body: [UInt8], policy: FilterPolicy, format: ExpositionFormat, plan: ChunkPlan,
                       plainPath: Bool = true, names: NameEscaping = .allowUTF8,
                       memo: SeriesMemo? = nil, sharingMemo: Bool = false) -> (output: [UInt8], report: FilterReport) {
    // A fresh tracker every run: admission depends only on this body.
    let filter = StreamingFilter(policy: policy, format: format, names: names, memo: memo, sharingMemo: sharingMemo)
    filter.usesPlainPath = filter.usesPlainPath && plainPath
    var output: [UInt8] = []
    var offset = 0
    for size in plan.sizes(body.count) {
        filter.process(Array(body[offset..<(offset + size)]), into: &output)
        offset += size
    }
    let report = filter.finish(into: &output)
    return (output, report)
}

// MARK: Checking

private struct Context {
    var format: ExpositionFormat
    var policyName: String
    var policy: FilterPolicy
    var plan: ChunkPlan
    var body: [UInt8]
    var output: [UInt8]
}

private func show(_ bytes: some Collection<UInt8>, limit: Int = 2000) -> String {
    var text = ""
    for byte in bytes.prefix(limit) {
        switch byte {
        case 0x0A: text += "\\n\n"
        case 0x5C: text += "\\\\"
        case 0x20...0x7E: text.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = Array("0123456789abcdef")
            text += "\\x\(hex[Int(byte >> 4)])\(hex[Int(byte & 0xF)])"
        }
    }
    if bytes.count > limit { text += "... (\(bytes.count) bytes)" }
    return text
}

private func violated(_ invariant: String, _ context: Context, _ detail: @autoclosure () -> String) -> Never {
    let message = """

        ===== MetricsFilter fuzz invariant violated: \(invariant)
        format: \(context.format.rawValue), policy: \(context.policyName), \
        max line: \(context.policy.maximumLineLength), invalid lines: \(context.policy.invalidLines.rawValue), \
        \(context.plan)
        \(detail())
        ----- input body (escaped):
        \(show(context.body))
        ----- output (escaped):
        \(show(context.output))
        =====

        """
    fatalError(message)
}

/// Lines of a body as the filter cuts them: at `\n`, a last line without one counts.
private func splitLines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
    var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
    if lines.last?.isEmpty == true { lines.removeLast() }
    return lines
}

/// A line without the blanks around it: how the filter passes on a line it keeps.
private func trimmed(_ line: ArraySlice<UInt8>) -> [UInt8] {
    var start = line.startIndex
    var end = line.endIndex
    while start < end, line[start] == 0x20 || line[start] == 0x09 { start += 1 }
    while end > start, line[end - 1] == 0x20 || line[end - 1] == 0x09 { end -= 1 }
    return Array(line[start..<end])
}

/// What a line means, whatever its spelling: a sample's series, value and timestamp;
/// a metadata line's kind and name.
private enum LineKey: Hashable {
    case sample(LabelSet, value: [UInt8], timestamp: [UInt8]?)
    case metadata(kind: UInt8, name: [UInt8])
    case eof

    init?(_ line: ExpositionLine) {
        switch line {
        case .sample(let sample): self = .sample(LabelSet(sample: sample), value: sample.value, timestamp: sample.timestamp)
        case .help(let name, _): self = .metadata(kind: 0, name: name)
        case .type(let name, _): self = .metadata(kind: 1, name: name)
        case .unit(let name, _): self = .metadata(kind: 2, name: name)
        case .eof: self = .eof
        case .blank, .comment: return nil
        }
    }
}

private struct ValueKey: Hashable {
    var value: [UInt8]
    var timestamp: [UInt8]?
}

private struct ExemplarKey: Hashable {
    var sample: LineKey
    var exemplar: Exemplar
}

private func check(_ context: Context, report: FilterReport) {
    let format = context.format
    let output = context.output
    let policy = context.policy
    /// Relabel and PII rules change labels; limits and identity never do.
    let canRewrite = !policy.relabelRules.isEmpty || !policy.pii.isEmpty

    // What the input holds: its lines (blanks around them trimmed), the meaning of
    // each line in order, sample names, values, and the exemplars of each sample.
    let inputLines = splitLines(context.body)
    let inputLineSet = Set(inputLines.map { Array($0) })
    let trimmedInput = Set(inputLines.map(trimmed))
    var inputKeys: [LineKey] = []
    var inputKeySet = Set<LineKey>()
    var inputNames = Set<[UInt8]>()
    var inputValues = Set<ValueKey>()
    var inputExemplars = Set<ExemplarKey>()
    var inputMetadata = Set<ExpositionLine>()
    for line in inputLines {
        guard case .success(let parsed) = ExpositionParser.parse(Array(line), format: format),
              let key = LineKey(parsed) else { continue }
        inputKeys.append(key)
        inputKeySet.insert(key)
        switch parsed {
        case .help, .type, .unit: inputMetadata.insert(parsed)
        default: break
        }
        if case .sample(let sample) = parsed {
            inputNames.insert(sample.name)
            inputValues.insert(ValueKey(value: sample.value, timestamp: sample.timestamp))
            if let exemplar = sample.exemplar { inputExemplars.insert(ExemplarKey(sample: key, exemplar: exemplar)) }
        }
    }

    if let last = output.last, last != 0x0A {
        violated("output ends with a newline", context, "last byte: \(last)")
    }
    let outputLines = splitLines(output)
    if format == .openMetrics, outputLines.last.map(Array.init) != Array("# EOF".utf8) {
        violated("OpenMetrics output always ends with # EOF", context, "")
    }
    var outputKeys: [LineKey] = []
    var newLines = 0
    var sampleLines = 0
    var seriesSeen = Set<LabelSet>()
    var previous: (series: LabelSet, timestamp: Double?)?
    for (index, slice) in outputLines.enumerated() {
        let line = Array(slice)
        let isLast = index == outputLines.count - 1
        let at = "line \(index + 1): \(show(line))"
        let parsed: ExpositionLine
        switch ExpositionParser.parse(line, format: format) {
        case .failure(let error):
            violated("every output line parses in the same format", context, "\(at)\nerror: \(error.reason)")
        case .success(let value):
            parsed = value
        }
        guard let key = LineKey(parsed) else {
            violated("no blank or comment line is passed on", context, at)
        }
        outputKeys.append(key)
        switch parsed {
        case .blank, .comment:
            break
        case .eof:
            guard format == .openMetrics, isLast else {
                violated("# EOF only as the last line of OpenMetrics", context, "line \(index + 1) of \(outputLines.count)")
            }
        case .help, .type, .unit:
            // OpenMetrics metadata is passed on as it came; text-format metadata
            // trimmed, and a HELP text with its unknown escapes escaped; a quoted name
            // written anew (unquoted when it is a legacy name) reads as the input's.
            let known = format == .openMetrics ? inputLineSet.contains(line) || inputMetadata.contains(parsed)
                : trimmedInput.contains(line) || inputMetadata.contains(parsed)
                    || { if case .help = parsed { return inputKeySet.contains(key) }; return false }()
            guard known else {
                violated("metadata comes from the input", context, at)
            }
        case .sample(let sample):
            sampleLines += 1
            if !trimmedInput.contains(line) { newLines += 1 }
            // Relabel and PII rules change labels and exemplars, never values.
            guard inputValues.contains(ValueKey(value: sample.value, timestamp: sample.timestamp)) else {
                violated("values and timestamps are passed on unchanged", context, at)
            }
            if format == .openMetrics, !inputNames.contains(sample.name) {
                violated("OpenMetrics samples are never renamed", context, at)
            }
            if !canRewrite {
                guard inputKeySet.contains(key) else {
                    violated("without relabel/PII rules every sample is an input sample", context, at)
                }
                if let exemplar = sample.exemplar, !inputExemplars.contains(ExemplarKey(sample: key, exemplar: exemplar)) {
                    violated("without relabel/PII rules an exemplar is the input's or none", context, at)
                }
            }
            // A series' samples are contiguous, and only with rising timestamps.
            let series = LabelSet(sample: sample)
            let time = sample.timestamp.flatMap { Double(String(decoding: $0, as: UTF8.self)) }
            if !seriesSeen.insert(series).inserted {
                guard let previous, previous.series == series, let before = previous.timestamp, let time, time > before else {
                    violated("a series again only right after itself, with a later timestamp", context, at)
                }
            }
            previous = (series, time)
        }
    }

    // Lines not in the input are rewritten samples, and the report counts them.
    guard newLines <= report.samplesRewritten else {
        violated("new sample lines <= samplesRewritten", context, "new lines: \(newLines), report: \(report)")
    }
    guard sampleLines == report.samplesOut else {
        violated("samplesOut counts the sample lines passed on", context,
                 "sample lines: \(sampleLines), report: \(report)")
    }
    guard report.samplesRewritten <= report.samplesOut else {
        violated("samplesRewritten counts only samples passed on", context, "report: \(report)")
    }
    let dropped = report.seriesDropped.values.reduce(0, +)
    guard report.samplesIn == report.samplesOut + dropped,
          report.seriesDroppedByMetric.values.reduce(0, +) == dropped,
          report.seriesDropped.values.allSatisfy({ $0 > 0 }) else {
        violated("every sample in is passed on or counted as dropped", context, "report: \(report)")
    }
    let rejected = report.linesRejected.values.reduce(0, +)
    guard report.failed == (policy.invalidLines == .failScrape && rejected > 0) else {
        violated("failed iff fail_scrape met an invalid line", context, "report: \(report)")
    }

    // Without relabel/PII rules the output says what the input said, lines left out,
    // in the input's order.
    if !canRewrite {
        var cursor = 0
        for (index, key) in outputKeys.enumerated() where !(key == .eof && format == .openMetrics) {
            while cursor < inputKeys.count, inputKeys[cursor] != key { cursor += 1 }
            guard cursor < inputKeys.count else {
                violated("without relabel/PII rules the output keeps the input's order", context,
                         "line \(index + 1): \(show(outputLines[index]))")
            }
            cursor += 1
        }
    }

    // The output is a fixed point of the identity filter: valid as a whole already.
    let identity = FilterPolicy(maximumLineLength: 1 << 30)
    let again = runFilter(output, policy: identity, format: format, plan: .whole)
    guard again.output == output else {
        violated("the output passes an identity filter unchanged", context,
                 "----- identity filter over the output gave:\n\(show(again.output))\nreport: \(again.report)")
    }
    guard again.report.samplesIn == again.report.samplesOut, again.report.linesRejected.isEmpty,
          again.report.seriesDropped.isEmpty, again.report.samplesRewritten == 0 else {
        violated("the identity filter over the output drops, rejects and rewrites nothing", context,
                 "report: \(again.report)")
    }
}

// MARK: Entry point

@_cdecl("LLVMFuzzerTestOneInput")
public func filterFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 2 else { return 0 }
    let control = data[0]
    let format: ExpositionFormat = control & 1 == 0 ? .text : .openMetrics
    let (basePolicyName, basePolicy) = fuzzPolicies[Int((control >> 1) & 7)]
    var policy = basePolicy
    if control & 0x10 != 0 { policy.maximumLineLength = 48 }
    if control & 0x20 != 0 { policy.invalidLines = .failScrape }
    if control & 0x80 != 0 {
        policy.limits.labelLimit = 4
        policy.limits.labelValueLengthLimit = 24
    }
    let plan: ChunkPlan = control & 0x40 != 0 ? .random(seed: data[1]) : .fixed(Int(data[1]) + 1)
    var body = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))
    if body.starts(with: [0x23, 0x50]) {  // `#P`: protobuf
        if control & 0x10 != 0 { policy.maximumFamilyLength = 64 }
        checkProtobuf(Array(body.dropFirst(2)), policy: policy, policyName: basePolicyName,
                      names: control & 1 == 0 ? .allowUTF8 : .underscores, plan: plan)
        return 0
    }
    var policyName = basePolicyName
    if body.starts(with: [0x23, 0x7E]) {  // `#~`: regex rules from the grammar
        let end = body.firstIndex(of: 0x0A) ?? body.endIndex
        var grammar = RegexGrammar(body[2..<end])
        policy.relabelRules = grammar.rules()
        policyName += "+grammar: " + policy.relabelRules.map { "\($0.action.rawValue) \($0.regex.pattern)" }
            .joined(separator: "; ")
        body = Array(body[min(end + 1, body.count)...])
    }

    let chunked = runFilter(body, policy: policy, format: format, plan: plan)
    let context = Context(format: format, policyName: policyName, policy: policy, plan: plan, body: body,
                          output: chunked.output)

    // Chunk-boundary independence: one chunk gives exactly the same bytes and report.
    let whole = runFilter(body, policy: policy, format: format, plan: .whole)
    guard whole.output == chunked.output, whole.report == chunked.report else {
        violated("chunk-boundary independence", context, """
            ----- output in one chunk:
            \(show(whole.output))
            report in chunks:   \(chunked.report)
            report in one chunk: \(whole.report)
            """)
    }

    // The fast path for plain lines decides as the full parser and label set do: the
    // same report and the same samples (a rewritten line may order its labels anew).
    let full = runFilter(body, policy: policy, format: format, plan: .whole, plainPath: false)
    guard full.report == whole.report, normalizedSamples(full.output, format) == normalizedSamples(whole.output, format) else {
        violated("plain path = full path", context, """
            ----- output of the full path:
            \(show(full.output))
            report of the plain path: \(whole.report)
            report of the full path:  \(full.report)
            """)
    }

    check(context, report: chunked.report)
    checkEscaped(context, utf8Report: whole.report)
    checkMemo(context, fresh: whole, fullPath: full, policyIndex: Int((control >> 1) & 7))
    return 0
}

/// The series memo changes nothing but speed: through one memo, a cold pass, a warm
/// pass in the input's chunks and a warm pass after another body (the same lines with
/// every digit shifted: other values, other series, other order) each give exactly
/// the fresh filter's bytes and report; so do passes that share the memo (as scrapes
/// at once do: they only read it, and must leave it as it was), a memo first filled
/// under another policy (it must forget), one too small to hold the body (it refuses
/// and forgets), and the full path's decisions remembered and replayed.
private func checkMemo(_ context: Context, fresh: (output: [UInt8], report: FilterReport),
                       fullPath: (output: [UInt8], report: FilterReport), policyIndex: Int) {
    func expectFresh(_ pass: String, _ run: (output: [UInt8], report: FilterReport),
                     _ expected: (output: [UInt8], report: FilterReport)) {
        guard run.output == expected.output, run.report == expected.report else {
            violated("memo: \(pass) = fresh filter", context, """
                ----- output of the \(pass):
                \(show(run.output))
                report fresh: \(expected.report)
                report \(pass): \(run.report)
                """)
        }
    }
    let shifted = context.body.map { byte -> UInt8 in
        byte >= 0x30 && byte <= 0x38 ? byte + 1 : (byte == 0x39 ? 0x30 : byte)
    }
    let memo = SeriesMemo(budget: 1 << 20)
    expectFresh("cold pass", runFilter(context.body, policy: context.policy, format: context.format, plan: .whole, memo: memo),
                fresh)
    expectFresh("warm pass", runFilter(context.body, policy: context.policy, format: context.format, plan: context.plan,
                                       memo: memo), fresh)
    func expectShared(_ pass: String, _ memo: SeriesMemo, plan: ChunkPlan) {
        let (state, statistics) = (memo.stateFingerprint, memo.statistics)
        expectFresh(pass, runFilter(context.body, policy: context.policy, format: context.format, plan: plan, memo: memo,
                                    sharingMemo: true), fresh)
        if memo.stateFingerprint != state || memo.statistics != statistics {
            violated("memo: a \(pass) leaves the memo as it was", context, "held \(memo.usedBytes) bytes")
        }
    }
    expectShared("shared pass", memo, plan: context.plan)
    _ = runFilter(shifted, policy: context.policy, format: context.format, plan: .whole, memo: memo)
    expectShared("shared pass after another body", memo, plan: .whole)
    expectFresh("warm pass after another body", runFilter(context.body, policy: context.policy, format: context.format,
                                                          plan: .whole, memo: memo), fresh)

    var other = fuzzPolicies[(policyIndex + 1) % fuzzPolicies.count].policy
    other.maximumLineLength = context.policy.maximumLineLength
    let changed = SeriesMemo(budget: 1 << 20)
    _ = runFilter(context.body, policy: other, format: context.format, plan: .whole, memo: changed)
    expectFresh("pass after a policy change", runFilter(context.body, policy: context.policy, format: context.format,
                                                        plan: .whole, memo: changed), fresh)

    let tiny = SeriesMemo(budget: 1536)
    for pass in ["cold pass through a tiny memo", "warm pass through a tiny memo", "third pass through a tiny memo"] {
        _ = runFilter(shifted, policy: context.policy, format: context.format, plan: .whole, memo: tiny)
        expectFresh(pass, runFilter(context.body, policy: context.policy, format: context.format, plan: .whole,
                                    memo: tiny), fresh)
    }
    expectShared("shared pass through a tiny memo", tiny, plan: .whole)

    // A memo that holds a few entries (the tiny one holds none: its index alone is
    // more) and overflows, so that forgetting moves entries down between passes.
    let small = SeriesMemo(budget: 6 << 10)
    let freshShifted = runFilter(shifted, policy: context.policy, format: context.format, plan: .whole)
    for (round, input) in [context.body, shifted, context.body, context.body, shifted, context.body].enumerated() {
        expectFresh("pass \(round) through a small memo", runFilter(input, policy: context.policy, format: context.format,
                                                                 plan: .whole, memo: small),
                    input == context.body ? fresh : freshShifted)
    }

    let full = SeriesMemo(budget: 1 << 20)
    for pass in ["cold pass of the full path", "warm pass of the full path"] {
        expectFresh(pass, runFilter(context.body, policy: context.policy, format: context.format, plan: .whole,
                                    plainPath: false, memo: full), fullPath)
    }
}

/// For a scraper that did not ask for UTF-8 names: the same samples are read (what
/// becomes of them may differ: rules see the escaped names), every name written is a
/// legacy name, and the output is valid as a whole (a fixed point of the identity
/// filter for the same scraper).
private func checkEscaped(_ context: Context, utf8Report: FilterReport) {
    let escaped = runFilter(context.body, policy: context.policy, format: context.format, plan: .whole, names: .underscores)
    guard escaped.report.samplesIn == utf8Report.samplesIn else {
        violated("escaping names reads the same samples", context, """
            ----- output with names escaped:
            \(show(escaped.output))
            report (UTF-8):   \(utf8Report)
            report (escaped): \(escaped.report)
            """)
    }
    for line in splitLines(escaped.output) {
        let legacy: Bool
        switch ExpositionParser.parse(Array(line), format: context.format) {
        case .success(.sample(let sample)):
            legacy = LabelNames.isValidMetricName(sample.name) && sample.labels.allSatisfy { LabelNames.isValid($0.name) }
                && (sample.exemplar?.labels.allSatisfy { LabelNames.isValid($0.name) } ?? true)
        case .success(.help(let name, _)), .success(.type(let name, _)), .success(.unit(let name, _)):
            legacy = LabelNames.isValidMetricName(name)
        default:
            legacy = true
        }
        guard legacy else {
            violated("names escaped for a legacy scraper are legacy names", context,
                     "line: \(show(line))\n----- output with names escaped:\n\(show(escaped.output))")
        }
    }
    let identity = FilterPolicy(maximumLineLength: 1 << 30)
    let again = runFilter(escaped.output, policy: identity, format: context.format, plan: .whole, names: .underscores)
    guard again.output == escaped.output else {
        violated("the escaped output passes an identity filter unchanged", context, """
            ----- output with names escaped:
            \(show(escaped.output))
            ----- identity filter over it gave:
            \(show(again.output))
            """)
    }
}

/// Each line of an output, with a sample's labels sorted: what two outputs that
/// differ only in label order have in common.
private func normalizedSamples(_ output: [UInt8], _ format: ExpositionFormat) -> [String] {
    splitLines(output).map { line in
        guard case .success(.sample(let sample)) = ExpositionParser.parse(Array(line), format: format) else {
            return String(decoding: line, as: UTF8.self)
        }
        let labels = sample.labels.filter { !$0.value.isEmpty }.sorted { $0.name.lexicographicallyPrecedes($1.name) }
        var normalized: [UInt8] = []
        ExpositionWriter.write(name: sample.name, labels: labels, value: sample.value, timestamp: sample.timestamp,
                               exemplar: sample.exemplar, into: &normalized)
        return String(decoding: normalized, as: UTF8.self)
    }
}

// MARK: Protobuf

private func runProtobuf(_ body: [UInt8], policy: FilterPolicy, names: NameEscaping,
                         plan: ChunkPlan, memo: SeriesMemo? = nil,
                         sharingMemo: Bool = false) -> (output: [UInt8], report: FilterReport) {
    let filter = ProtobufFilter(policy: policy, names: names, memo: memo, sharingMemo: sharingMemo)
    var output: [UInt8] = []
    var offset = 0
    for size in plan.sizes(body.count) {
        filter.process(Array(body[offset..<(offset + size)]), into: &output)
        offset += size
    }
    return (output, filter.finish(into: &output))
}

/// The protobuf filter's invariants: the same bytes and report whatever the chunks;
/// under the identity policy for a UTF-8 scraper, a body read without a complaint goes
/// out byte for byte; the output is well framed, every family and metric in it well
/// formed, and a fixed point of the identity filter (valid as it is).
private func checkProtobuf(_ body: [UInt8], policy: FilterPolicy, policyName: String, names: NameEscaping, plan: ChunkPlan) {
    func fail(_ invariant: String, _ detail: String) -> Never {
        fatalError("""

            ===== MetricsFilter fuzz invariant violated (protobuf): \(invariant)
            policy: \(policyName), names: \(names.rawValue), family bound: \(policy.maximumFamilyLength), \(plan)
            \(detail)
            ----- input body (escaped):
            \(show(body))
            =====
            """)
    }
    let chunked = runProtobuf(body, policy: policy, names: names, plan: plan)
    let whole = runProtobuf(body, policy: policy, names: names, plan: .whole)
    guard chunked.output == whole.output, chunked.report == whole.report else {
        fail("chunk-boundary independence", "chunked: \(chunked.report)\nwhole:   \(whole.report)")
    }
    let clean = whole.report.linesRejected.isEmpty && whole.report.seriesDropped.isEmpty
    if policy.isIdentity, names == .allowUTF8, clean, whole.output != body {
        fail("an identity filter passes a clean body byte for byte", "----- output:\n\(show(whole.output))")
    }
    // Well framed and well formed: every family, metric and label pair decodes.
    var splitter = DelimitedSplitter(maximumMessageLength: Int.max)
    var problems: [String] = []
    whole.output.withUnsafeBytes { bytes in
        splitter.feed(bytes) { event in
            guard case .message(let family) = event else { return problems.append("oversized in output") }
            do throws(ProtoWire.Malformed) {
                for field in try ProtoWire.fields(of: family) where field.number == 4 {
                    let metric = family.value(of: field)
                    try MetricSchema.validate(metric: metric)
                    _ = try MetricMessages.labels(of: metric, fields: try ProtoWire.fields(of: metric), number: 1)
                }
            } catch {
                problems.append("\(error.reason)")
            }
        }
    }
    guard problems.isEmpty, splitter.finish() else {
        fail("the output is well-formed protobuf", "\(problems)\n----- output:\n\(show(whole.output))")
    }
    // The series memo changes nothing: cold, warm in the input's chunks, shared (read
    // only, as scrapes at once read it), warm after another body (every byte of the
    // body's digits shifted), after a policy change, and through a memo too small to
    // hold it.
    let shifted = body.map { $0 >= 0x30 && $0 <= 0x38 ? $0 + 1 : ($0 == 0x39 ? 0x30 : $0) }
    let memo = SeriesMemo(budget: 1 << 20)
    for (pass, plan) in [("cold", ChunkPlan.whole), ("warm", plan), ("shared", plan)] {
        let state = memo.stateFingerprint
        let run = runProtobuf(body, policy: policy, names: names, plan: plan, memo: memo, sharingMemo: pass == "shared")
        if pass == "shared", memo.stateFingerprint != state {
            fail("memo: a shared pass leaves the memo as it was", "held \(memo.usedBytes) bytes")
        }
        guard run.output == whole.output, run.report == whole.report else {
            fail("memo: \(pass) pass = fresh filter", "memo: \(run.report)\nfresh: \(whole.report)\n----- output:\n\(show(run.output))")
        }
    }
    _ = runProtobuf(shifted, policy: policy, names: names, plan: .whole, memo: memo)
    var other = FilterPolicy(pii: PIIPolicy(labelRules: [.init(name: "all", labelRegex: regex(".+"), action: .hash)],
                                            hashKey: Array("another-key".utf8)))
    other.maximumFamilyLength = policy.maximumFamilyLength
    let changed = SeriesMemo(budget: 1 << 20)
    _ = runProtobuf(body, policy: other, names: names, plan: .whole, memo: changed)
    let tiny = SeriesMemo(budget: 1200)
    _ = runProtobuf(shifted, policy: policy, names: names, plan: .whole, memo: tiny)
    for (pass, memo) in [("shared pass after another body", memo), ("warm pass after another body", memo),
                         ("pass after a policy change", changed), ("pass through a tiny memo", tiny),
                         ("second pass through a tiny memo", tiny), ("shared pass through a tiny memo", tiny)] {
        let state = memo.stateFingerprint
        let run = runProtobuf(body, policy: policy, names: names, plan: .whole, memo: memo,
                              sharingMemo: pass.hasPrefix("shared"))
        if pass.hasPrefix("shared"), memo.stateFingerprint != state {
            fail("memo: a \(pass) leaves the memo as it was", "held \(memo.usedBytes) bytes")
        }
        guard run.output == whole.output, run.report == whole.report else {
            fail("memo: \(pass) = fresh filter", "memo: \(run.report)\nfresh: \(whole.report)\n----- output:\n\(show(run.output))")
        }
    }
    // A memo that holds a few entries (the tiny one holds none: its index alone is
    // more) and overflows, so that forgetting moves entries down (and the series'
    // numbers are made again) between passes.
    let small = SeriesMemo(budget: 6 << 10)
    let freshShifted = runProtobuf(shifted, policy: policy, names: names, plan: .whole)
    for (round, input) in [body, shifted, body, body, shifted, body].enumerated() {
        let run = runProtobuf(input, policy: policy, names: names, plan: .whole, memo: small)
        let expected = input == body ? whole : freshShifted
        guard run.output == expected.output, run.report == expected.report else {
            fail("memo: pass \(round) through a small memo = fresh filter",
                 "memo: \(run.report)\nfresh: \(expected.report)\n----- output:\n\(show(run.output))")
        }
    }
    let identity = FilterPolicy(maximumLineLength: 1 << 30, maximumFamilyLength: 1 << 30)
    let again = runProtobuf(whole.output, policy: identity, names: names, plan: .whole)
    guard again.output == whole.output, again.report.linesRejected.isEmpty, again.report.seriesDropped.isEmpty else {
        fail("the output passes an identity filter unchanged",
             "report: \(again.report)\n----- output:\n\(show(whole.output))\n----- again:\n\(show(again.output))")
    }
}
