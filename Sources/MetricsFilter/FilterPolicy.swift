/// Everything a filter does to a scrape: a Sendable value, built from scrapeguard.yml
/// and replaced whole on reload.
public struct FilterPolicy: Sendable {
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
    public var invalidLines: InvalidLineAction

    public init(relabelRules: [RelabelRule] = [], pii: PIIPolicy = PIIPolicy(), limits: SeriesLimits = SeriesLimits(),
                maximumLineLength: Int = 64 << 10, invalidLines: InvalidLineAction = .drop) {
        self.relabelRules = relabelRules
        self.pii = pii
        self.limits = limits
        self.maximumLineLength = maximumLineLength
        self.invalidLines = invalidLines
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
