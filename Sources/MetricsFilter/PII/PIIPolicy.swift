
/// What happens to a label value that a PII rule matches.
public enum PIIAction: String, Sendable, Hashable, CaseIterable {
    /// The label is removed (series that collapse into one are de-duplicated).
    case drop
    /// The value becomes the policy's marker.
    case redact
    /// The value becomes a keyed pseudonym: `h_` and 16 hex digits of
    /// HMAC-SHA256(key, value). The same value always maps to the same pseudonym, and
    /// without the key a dictionary cannot reverse it.
    case hash
    /// The whole series is dropped.
    case dropSeries = "drop_series"
}

/// What a value detector looks for anywhere in a label value.
public enum PIIDetector: String, Sendable, Hashable, CaseIterable {
    case email
    case ipv4
    case ipv6
    /// 13 to 19 digits (spaces or dashes between groups allowed) that pass the Luhn check.
    case card
    /// `Bearer <token>`.
    case bearer
    /// A JSON Web Token: `eyJ...` in three base64url parts.
    case jwt
}

/// PII rules: by label name (exact or regex) and by value (detectors), applied after
/// relabeling to every label but `__name__`, and to exemplar labels too.
public struct PIIPolicy: Sendable, Equatable {
    public struct LabelRule: Sendable, Equatable {
        /// Shown in counters: `scrapeguard_filter_values_hashed_total{rule=...}`.
        public var name: String
        public var labelNames: Set<[UInt8]>
        public var labelRegex: RelabelRegex?
        public var action: PIIAction

        public init(name: String, labelNames: [String] = [], labelRegex: RelabelRegex? = nil, action: PIIAction) {
            self.name = name
            self.labelNames = Set(labelNames.map { Array($0.utf8) })
            self.labelRegex = labelRegex
            self.action = action
        }
    }

    public struct DetectorRule: Sendable, Equatable {
        public var name: String
        public var detector: PIIDetector
        public var action: PIIAction

        public init(name: String, detector: PIIDetector, action: PIIAction) {
            self.name = name
            self.detector = detector
            self.action = action
        }
    }

    public var labelRules: [LabelRule]
    public var detectorRules: [DetectorRule]
    /// Labels the detectors never look at (say `version`, whose `1.2.3.4` is no IP).
    public var detectorExemptLabels: Set<[UInt8]>
    public var marker: [UInt8]
    /// The HMAC key, from a file; needed by `hash` rules.
    public var hashKey: [UInt8] {
        didSet { pseudonymizer = Pseudonymizer(key: hashKey) }
    }
    private var pseudonymizer: Pseudonymizer

    public init(labelRules: [LabelRule] = [], detectorRules: [DetectorRule] = [], detectorExemptLabels: [String] = ["le", "quantile"],
                marker: String = "redacted", hashKey: [UInt8] = []) {
        self.labelRules = labelRules
        self.detectorRules = detectorRules
        self.detectorExemptLabels = Set(detectorExemptLabels.map { Array($0.utf8) })
        self.marker = Array(marker.utf8)
        self.hashKey = hashKey
        self.pseudonymizer = Pseudonymizer(key: hashKey)
    }

    public var isEmpty: Bool { labelRules.isEmpty && detectorRules.isEmpty }

    /// Every stored field but the pseudonymizer, which is made from `hashKey`.
    public static func == (lhs: PIIPolicy, rhs: PIIPolicy) -> Bool {
        lhs.labelRules == rhs.labelRules && lhs.detectorRules == rhs.detectorRules
            && lhs.detectorExemptLabels == rhs.detectorExemptLabels && lhs.marker == rhs.marker && lhs.hashKey == rhs.hashKey
    }

    /// `h_` and the first 16 hex digits of HMAC-SHA256(key, value). If OpenSSL
    /// fails, the value is redacted rather than passed on.
    public func pseudonym(_ value: [UInt8]) -> [UInt8] {
        value.withUnsafeBufferPointer { pseudonym($0) }
    }

    func pseudonym(_ value: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        pseudonymizer.pseudonym(value) ?? marker
    }

    /// A pseudonym held inline (nil without a usable key or if OpenSSL failed: the
    /// caller then writes the marker).
    func inlinePseudonym(_ value: UnsafeBufferPointer<UInt8>) -> Pseudonym? {
        pseudonymizer.inlinePseudonym(value)
    }
}
