/// Everything a filter does to a scrape: a Sendable value, built from scrapeguard.yml
/// and replaced whole on reload.
public struct FilterPolicy: Sendable, Equatable {
    public enum InvalidLineAction: String, Sendable {
        /// Drop the line and count it (the default).
        case drop
        /// Fail the whole scrape.
        case failScrape = "fail_scrape"
    }

    public var relabelRules: [RelabelRule]
    public var pii: PIIPolicy
    public var limits: SeriesLimits
    /// Lines longer than this are dropped whole.
    public var maximumLineLength: Int
    /// Protobuf `MetricFamily` messages longer than this are dropped whole, without
    /// being buffered (a family is the protobuf exposition's unit, as a line is the
    /// text's).
    public var maximumFamilyLength: Int
    public var invalidLines: InvalidLineAction
    /// Bytes for remembering what the policy decided about each series from one
    /// scrape to the next (see `SeriesMemo`); 0 turns it off.
    public var memoBudget: Int

    public init(relabelRules: [RelabelRule] = [], pii: PIIPolicy = PIIPolicy(), limits: SeriesLimits = SeriesLimits(),
                maximumLineLength: Int = 64 << 10, maximumFamilyLength: Int = 16 << 20,
                invalidLines: InvalidLineAction = .drop, memoBudget: Int = FilterPolicy.defaultMemoBudget) {
        self.relabelRules = relabelRules
        self.pii = pii
        self.limits = limits
        self.maximumLineLength = maximumLineLength
        self.maximumFamilyLength = maximumFamilyLength
        self.invalidLines = invalidLines
        self.memoBudget = memoBudget
    }

    /// 16 MiB: about 60,000 series passed as they are, or 37,000 rewritten by a PII
    /// policy (a remembered series costs its series part, its output when rewritten,
    /// and about 115 bytes: the entry and its share of the index). Chosen so that
    /// deploy/'s 128 MiB limit holds the idle process (35 MiB), a full buffer budget
    /// (32 MiB), sixty stalled scrapers' sockets (35 MiB) and a full memo.
    public static let defaultMemoBudget = 16 << 20

    /// Whether protobuf bodies can be filtered to what the rules say. In protobuf a
    /// bucket's bound and a quantile are values inside a histogram or summary, not the
    /// `le` and `quantile` labels the text formats give each of its series, so a rule
    /// that reads, drops, keeps or maps those labels would act differently there: such a
    /// policy is served text only (the gateway then never asks for protobuf).
    public var readsProtobuf: Bool {
        let structural: [[UInt8]] = [Array("le".utf8), Array("quantile".utf8)]
        for rule in relabelRules {
            if rule.sourceLabels.contains(where: structural.contains) || structural.contains(rule.targetLabel) { return false }
            switch rule.action {
            case .replace, .hashmod, .lowercase, .uppercase:
                // A templated target may name `le` or `quantile` for some value.
                if rule.targetLabel.contains(UInt8(ascii: "$")) { return false }
            case .labeldrop:
                if structural.contains(where: rule.regex.matches) { return false }
            case .labelmap:
                // Maps them away, or may map something onto them.
                if structural.contains(where: rule.regex.matches) || rule.replacement.contains(UInt8(ascii: "$"))
                    || structural.contains(rule.replacement) { return false }
            case .labelkeep:
                // Whatever it does not keep, it drops: `le` and `quantile` among them.
                if !structural.allSatisfy(rule.regex.matches) { return false }
            default:
                break
            }
        }
        for rule in pii.labelRules {
            if structural.contains(where: rule.labelNames.contains) { return false }
            if let regex = rule.labelRegex, structural.contains(where: regex.matches) { return false }
        }
        // Detectors look at every label not exempt: at `le` and `quantile` too, unless exempt.
        if !pii.detectorRules.isEmpty && !structural.allSatisfy(pii.detectorExemptLabels.contains) { return false }
        return true
    }

    /// Nothing to change: samples are still parsed and checked, never rewritten.
    public var isIdentity: Bool {
        relabelRules.isEmpty && pii.isEmpty && limits.labelLimit == nil && limits.labelValueLengthLimit == nil
            && !limits.needsTracker
    }
}

/// What one pass of the filter did, for counters and the `filter` command's summary.
public struct FilterReport: Sendable, Hashable {
    public var samplesIn = 0
    public var samplesOut = 0
    /// Series dropped, by reason (`relabel`, `duplicate`, `invalid_name`, ...).
    public var seriesDropped: [String: Int] = [:]
    /// Series dropped by reason and metric name.
    public var seriesDroppedByMetric: [DroppedKey: Int] = [:]
    /// Lines not understood, by reason.
    public var linesRejected: [String: Int] = [:]
    /// Samples whose labels were rewritten.
    public var samplesRewritten = 0
    /// Values a PII rule changed or removed, by rule name and action (`redact`,
    /// `hash`, `drop`, `drop_series`).
    public var piiActions: [PIIKey: Int] = [:]

    public struct PIIKey: Hashable, Sendable {
        public var rule: String
        public var action: String
    }
    /// The scrape must fail (policy `fail_scrape` met an invalid line).
    public var failed = false

    public struct DroppedKey: Hashable, Sendable {
        public var reason: String
        public var metric: String
    }

    mutating func drop(_ reason: DropReason, metric: [UInt8], count: Int = 1) {
        seriesDropped[reason.rawValue, default: 0] += count
        seriesDroppedByMetric[DroppedKey(reason: reason.rawValue, metric: String(decoding: metric, as: UTF8.self)), default: 0] += count
    }

    mutating func reject(_ reason: DropReason) {
        linesRejected[reason.rawValue, default: 0] += 1
    }

    /// A line the parser could not read, under the parser's words (`bad_label_value`).
    mutating func reject(unparsed reason: String) {
        linesRejected[reason, default: 0] += 1
    }
}
