/// Prometheus's relabel actions.
public enum RelabelAction: String, Sendable, Hashable, CaseIterable {
    case replace, keep, drop, keepequal, dropequal, hashmod, labelmap, labeldrop, labelkeep, lowercase, uppercase
}

/// One `metric_relabel_configs` entry, validated as Prometheus validates it.
public struct RelabelRule: Sendable, Equatable {
    public var action: RelabelAction
    public var sourceLabels: [[UInt8]]
    public var separator: [UInt8]
    public var targetLabel: [UInt8]
    public var regex: RelabelRegex
    public var modulus: UInt64
    public var replacement: [UInt8]
    /// Which Prometheus's rules this rule follows (anchoring, valid label names).
    public var semantics: RelabelSemantics { regex.semantics }

    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// What was written in the configuration; nil for a field left out.
    public struct Fields: Sendable {
        public var action: String?
        public var sourceLabels: [String]?
        public var separator: String?
        public var targetLabel: String?
        public var regex: String?
        public var modulus: UInt64?
        public var replacement: String?

        public init(action: String? = nil, sourceLabels: [String]? = nil, separator: String? = nil, targetLabel: String? = nil,
                    regex: String? = nil, modulus: UInt64? = nil, replacement: String? = nil) {
            self.action = action
            self.sourceLabels = sourceLabels
            self.separator = separator
            self.targetLabel = targetLabel
            self.regex = regex
            self.modulus = modulus
            self.replacement = replacement
        }
    }

    /// Applies Prometheus's defaults and checks, with its messages, as the given
    /// Prometheus version has them.
    public init(_ fields: Fields, semantics: RelabelSemantics = .prometheus3) throws(Invalid) {
        let actionText = (fields.action ?? "replace").lowercased()
        guard let action = RelabelAction(rawValue: actionText) else {
            throw Invalid(message: "unknown relabel action \"\(fields.action ?? "")\"")
        }
        for name in fields.sourceLabels ?? [] where !semantics.isValidLabelName(Array(name.utf8)) {
            throw Invalid(message: "\"\(name)\" is not a valid label name")
        }
        let regex: RelabelRegex
        do {
            regex = try RelabelRegex(fields.regex ?? RelabelRegex.defaultPattern, semantics: semantics)
        } catch {
            throw Invalid(message: error.message)
        }
        self.action = action
        self.sourceLabels = (fields.sourceLabels ?? []).map { Array($0.utf8) }
        self.separator = Array((fields.separator ?? ";").utf8)
        self.targetLabel = Array((fields.targetLabel ?? "").utf8)
        self.regex = regex
        self.modulus = fields.modulus ?? 0
        self.replacement = Array((fields.replacement ?? "$1").utf8)
        // In Prometheus's order (`Config.Validate`), so that the first error found is
        // the one it reports.
        try validateRequiredFields(fields)
        switch semantics {
        case .prometheus2: try validateNamesAsPrometheus2(fields)
        case .prometheus3: try validateNamesAsPrometheus3(fields)
        }
        try validateFieldCombinations(fields)
    }

    private func validateRequiredFields(_ fields: Fields) throws(Invalid) {
        if action == .hashmod && modulus == 0 {
            throw Invalid(message: "relabel configuration for hashmod requires non-zero modulus")
        }
        if action == .hashmod && !Relabeler.md5Works {
            // Else every value would hash alike, and one shard keep everything.
            throw Invalid(message: "hashmod needs MD5, which the system's OpenSSL refuses (a FIPS-only provider?)")
        }
        switch action {
        case .replace, .hashmod, .lowercase, .uppercase, .keepequal, .dropequal:
            if targetLabel.isEmpty {
                throw Invalid(message: "relabel configuration for \(action.rawValue) action requires 'target_label' value")
            }
        default:
            break
        }
    }

    /// Fields an action does not take.
    private func validateFieldCombinations(_ fields: Fields) throws(Invalid) {
        if (action == .lowercase || action == .uppercase) && fields.replacement != nil && fields.replacement != "$1" {
            throw Invalid(message: "'replacement' can not be set for \(action.rawValue) action")
        }
        if action == .keepequal || action == .dropequal {
            if fields.regex != nil {
                throw Invalid(message: "\(action.rawValue) action requires only 'source_labels' and `target_label`, and no other fields")
            }
            if (fields.separator != nil && fields.separator != ";") || fields.modulus != nil {
                throw Invalid(message: "\(action.rawValue) action requires only 'source_labels' and `target_label`, and no other fields")
            }
            if fields.replacement != nil && fields.replacement != "$1" {
                throw Invalid(message: "'replacement' can not be set for \(action.rawValue) action")
            }
        }
        if action == .labeldrop || action == .labelkeep {
            if fields.sourceLabels != nil || fields.targetLabel != nil || fields.modulus != nil
                || (fields.separator != nil && fields.separator != ";")
                || (fields.replacement != nil && fields.replacement != "$1") {
                throw Invalid(message: "\(action.rawValue) action requires only 'regex', and no other fields")
            }
        }
    }
}

extension RelabelRule {
    /// Prometheus 2.42's name checks: legacy names, or names with `$` references
    /// (its `relabelTarget` pattern) for every action with a target but hashmod.
    private func validateNamesAsPrometheus2(_ fields: Fields) throws(Invalid) {
        let target = fields.targetLabel ?? ""
        switch action {
        case .replace, .lowercase, .uppercase, .keepequal, .dropequal:
            if !LabelNames.isValidTemplate(targetLabel) {
                throw Invalid(message: "\"\(target)\" is invalid 'target_label' for \(action.rawValue) action")
            }
        case .hashmod:
            if !LabelNames.isValid(targetLabel) {
                throw Invalid(message: "\"\(target)\" is invalid 'target_label' for hashmod action")
            }
        default:
            break
        }
        if action == .labelmap && !LabelNames.isValidTemplate(replacement) {
            throw Invalid(message: "\"\(fields.replacement ?? "")\" is invalid 'replacement' for labelmap action")
        }
    }

    /// Prometheus 3's (`Config.Validate` under `utf8` name validation): a name is any
    /// non-empty UTF-8, with or without `$` references.
    private func validateNamesAsPrometheus3(_ fields: Fields) throws(Invalid) {
        let target = fields.targetLabel ?? ""
        switch action {
        case .replace, .hashmod, .lowercase, .uppercase, .keepequal, .dropequal:
            if !semantics.isValidLabelName(targetLabel) {
                throw Invalid(message: "\"\(target)\" is invalid 'target_label' for \(action.rawValue) action")
            }
        case .labelmap:
            if !semantics.isValidLabelName(replacement) {
                throw Invalid(message: "\"\(fields.replacement ?? "")\" is invalid 'replacement' for labelmap action")
            }
        default:
            break
        }
    }
}

/// Label name rules of Prometheus 2.x: `[a-zA-Z_][a-zA-Z0-9_]*`.
public enum LabelNames {
    public static func isValid<Name: Collection<UInt8>>(_ name: Name) -> Bool {
        guard let first = name.first, !(first >= 0x30 && first <= 0x39) else { return false }
        return name.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
    }

    /// A metric name also allows `:`.
    public static func isValidMetricName<Name: Collection<UInt8>>(_ name: Name) -> Bool {
        guard let first = name.first, !(first >= 0x30 && first <= 0x39) else { return false }
        return name.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x3A
        }
    }

    /// A name that may hold `$1` / `${name}` references (Prometheus's
    /// `relabelTarget` pattern `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`).
    public static func isValidTemplate(_ name: [UInt8]) -> Bool {
        func isWord(_ byte: UInt8) -> Bool {
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x5F
        }
        func isStart(_ byte: UInt8) -> Bool {
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || byte == 0x5F
        }
        var index = 0
        guard !name.isEmpty else { return false }
        // Each piece: a start letter or a $reference, then any word characters.
        while index < name.count {
            if isStart(name[index]) {
                index += 1
            } else if name[index] == UInt8(ascii: "$") {
                index += 1
                if index < name.count, name[index] == UInt8(ascii: "{") {
                    let start = index + 1
                    var end = start
                    while end < name.count, isWord(name[end]) { end += 1 }
                    guard end > start, end < name.count, name[end] == UInt8(ascii: "}") else { return false }
                    index = end + 1
                } else {
                    let start = index
                    while index < name.count, isWord(name[index]) { index += 1 }
                    guard index > start else { return false }
                }
            } else {
                return false
            }
            while index < name.count, isWord(name[index]) { index += 1 }
        }
        return true
    }
}
