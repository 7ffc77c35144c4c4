/// Which Prometheus a rule list behaves like (`relabel_semantics` in scrapeguard.yml).
/// The two differ in how a regex is anchored and which label names are valid.
public enum RelabelSemantics: String, Sendable, Hashable, CaseIterable {
    /// Prometheus 3 (the default): a regex is matched as `^(?s:REGEX)$`, so `.`
    /// matches a newline, and a label name is any non-empty UTF-8 (its `utf8` name
    /// validation, `model.UTF8Validation`).
    case prometheus3
    /// Prometheus 2: `^(?:REGEX)$` (`.` stops at a newline) and label names
    /// `[a-zA-Z_][a-zA-Z0-9_]*`.
    case prometheus2

    /// The pattern as Prometheus compiles it (`relabel.NewRegexp`): the text is
    /// spliced in, not parsed first, so `a)|(b` is a valid regex here, as it is there.
    func anchored(_ pattern: String) -> String {
        switch self {
        case .prometheus3: return "^(?s:" + pattern + ")$"
        case .prometheus2: return "^(?:" + pattern + ")$"
        }
    }

    /// Whether a rule may name this label (`ValidationScheme.IsValidLabelName`).
    public func isValidLabelName(_ name: [UInt8]) -> Bool {
        switch self {
        case .prometheus3: return !name.isEmpty && ExpositionTokens.isValidUTF8(name)
        case .prometheus2: return LabelNames.isValid(name)
        }
    }
}
