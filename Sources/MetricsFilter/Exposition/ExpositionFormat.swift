/// The two exposition formats the filter reads and writes. Protobuf is never asked
/// for: the filter cannot inspect it.
public enum ExpositionFormat: String, Sendable, Hashable, CaseIterable {
    /// Prometheus text format 0.0.4.
    case text
    /// OpenMetrics 1.0 text.
    case openMetrics = "openmetrics"

    public var contentType: String {
        switch self {
        case .text: return "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: return "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }

    /// The format of an upstream `Content-Type`; anything not OpenMetrics is read as
    /// the text format, as Prometheus does.
    public init(contentType: String?) {
        let lowered = (contentType ?? "").lowercased()
        self = lowered.hasPrefix("application/openmetrics-text") ? .openMetrics : .text
    }
}
