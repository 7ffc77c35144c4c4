extension ExpositionStructure {
    /// What OpenMetrics forbids of a sample's value and its `le`/`quantile`/stateset
    /// label, by its family's type and its name's suffix; nil when it may stand.
    static func valueProblem<Labels: StructureLabels>(type: MetricType, suffix: String, value: Double?, labels: Labels,
                                                      family: [UInt8]) -> DropReason? {
        guard let value else { return .badValue }
        let counterLike: Bool
        switch (type, suffix) {
        case (.counter, "_total"), (.histogram, "_bucket"), (.histogram, "_count"), (.histogram, "_sum"),
             (.summary, "_count"), (.summary, "_sum"), (.gaugehistogram, "_gcount"), (.gaugehistogram, "_bucket"):
            counterLike = true
        default:
            counterLike = false
        }
        if counterLike || (type == .gaugehistogram && suffix == "_gsum") {
            if value.isNaN { return .counterNan }
        }
        if counterLike && value < 0 { return .counterNegative }
        if (suffix == "_bucket" || suffix == "_count" || suffix == "_gcount"), value.isFinite, value.rounded() != value {
            return .countNotInteger
        }
        if suffix == "_bucket" {
            guard let bound = labels.number(of: "le", canonical: true), !bound.isNaN else { return .invalidLe }
        }
        if type == .summary && suffix == "" {
            guard let q = labels.number(of: "quantile", canonical: true), q >= 0, q <= 1 else { return .invalidQuantile }
            if value < 0 { return .quantileValueNegative }
        }
        if type == .info && value != 1 { return .infoValueNotOne }
        if type == .stateset {
            guard value == 0 || value == 1 else { return .statesetValue }
            guard labels.contains(family) else { return .statesetMissingLabel }
        }
        return nil
    }
}
