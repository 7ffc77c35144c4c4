/// Which Prometheus a rule list behaves like (`relabel_semantics` in scrapeguard.yml).
/// The two differ in how a regex is anchored and which label names are valid.
/// Both read regexes as Go 1.22+ does (`(?<name>…)` included), as the Prometheus
/// releases teams run are built with it (2.53 LTS, 2.55, 3.x).
public enum RelabelSemantics: String, Sendable, Hashable, CaseIterable {
    /// Prometheus 3.2+ (the default): a regex is matched as `^(?s:REGEX)$`, so `.`
    /// matches a newline, and a label name is any non-empty UTF-8 (its `utf8` name
    /// validation, `model.UTF8Validation`; 3.0 and 3.1 still held templated targets
    /// to the legacy pattern).
    case prometheus3
    /// Prometheus 2: `^(?:REGEX)$` (`.` stops at a newline), label names
    /// `[a-zA-Z_][a-zA-Z0-9_]*`, templated names as its `relabelTarget` pattern.
    /// Where 2.x releases differ, the later one: a `replace` whose result is empty
    /// deletes the expanded target (2.50+), where 2.42 deleted the label named by the
    /// unexpanded template (nothing, for a template with `$`).
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
