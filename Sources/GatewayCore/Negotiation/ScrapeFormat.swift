import MetricsFilter

/// A format the gateway reads from the app and writes to the scraper: one of the text
/// expositions (`StreamingFilter`), or the delimited protobuf one (`ProtobufFilter`),
/// which is only asked for, and only taken, when the scraper accepts it.
package enum ScrapeFormat: Hashable, Sendable {
    case exposition(ExpositionFormat)
    case protobuf

    static let text = ScrapeFormat.exposition(.text)
    static let openMetrics = ScrapeFormat.exposition(.openMetrics)

    /// The protobuf exposition's media type, as Prometheus asks for it.
    static let protobufMediaType = "application/vnd.google.protobuf"
    static let protobufContentType =
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

    /// The version a media range of this format means when it names none (text 0.0.4,
    /// OpenMetrics 1.0.0; protobuf has no version).
    var defaultVersion: String? {
        switch self {
        case .exposition(.text): return "0.0.4"
        case .exposition(.openMetrics): return "1.0.0"
        case .protobuf: return nil
        }
    }
}
