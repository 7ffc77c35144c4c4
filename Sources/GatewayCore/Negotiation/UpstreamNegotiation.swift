import MetricsFilter

/// What the gateway asks the app for, and what it takes back: the formats the filter
/// reads, and nothing else. Whatever the app answers is checked before a byte is
/// forwarded, so a body the filter cannot read is a 502, never an empty or unfiltered
/// 200 (which Prometheus would record as a successful scrape with no series).
enum UpstreamNegotiation {
    /// How the app answered.
    enum Answer: Equatable {
        /// The filter reads it; the response to the scraper says `contentType`.
        case readable(ScrapeFormat, contentType: String)
        /// Not a format the filter reads, or an encoding it did not ask for.
        case unreadable(reason: String)
    }

    /// The format of a media range the filter reads, by type and version (none means
    /// text 0.0.4, OpenMetrics 1.0.0), and for protobuf only the delimited
    /// `MetricFamily` stream.
    static func readableFormat(_ range: MediaRange) -> ScrapeFormat? {
        let version = range.parameter("version")
        switch range.type {
        case "text/plain" where version == nil || version == "0.0.4" || version == "1.0.0":
            return .text
        case "application/openmetrics-text" where version == nil || version == "1.0.0" || version == "0.0.1":
            return .openMetrics
        case ScrapeFormat.protobufMediaType
            where range.parameter("proto") == "io.prometheus.client.MetricFamily" && range.parameter("encoding") == "delimited":
            return .protobuf
        default:
            return nil
        }
    }

    /// The app's `Accept`: the scraper's clauses the filter can read (the delimited
    /// protobuf stream among them), in the scraper's order, with their `escaping=` and
    /// q-values, and text 0.0.4 last if it is not there; no `*/*`. The filter reads UTF-8 names, and escapes
    /// them itself for a scraper that did not ask for them (`nameEscaping`), so the
    /// app is asked for exactly what the scraper asked: an app that escapes gives the
    /// same names the gateway would have made.
    /// Without `protobuf` (a policy that cannot filter it), protobuf clauses are left out.
    static func upstreamAccept(forScraper accept: String?, protobuf: Bool = true) -> String {
        var clauses: [String] = []
        var hasText004 = false
        for range in MediaRange.list(accept ?? "") {
            guard let format = readableFormat(range), protobuf || format != .protobuf else { continue }
            clauses.append(range.description)
            if range.type == "text/plain" && (range.parameter("version") ?? "0.0.4") == "0.0.4" { hasText004 = true }
        }
        if !hasText004 {
            clauses.append("text/plain;version=0.0.4;q=0.1")
        }
        return clauses.joined(separator: ",")
    }

    /// How names reach the scraper in the response it gets (`served`, the gateway's
    /// Content-Type), as prometheus/common's `NegotiateAccept` decides it: the
    /// scraper's clauses in order of preference, up to the one for the served media
    /// type and version; the last `escaping=` among them counts (so Prometheus 3.4+,
    /// which puts it on its 1.0.0 clauses only, gets what it asked there for a 0.0.4
    /// answer too). None (Prometheus 2.x), or only unknown values: `underscores`, what
    /// Go's and Python's exporters answer then.
    static func nameEscaping(forScraper accept: String?, serving served: String) -> NameEscaping {
        guard let servedRange = MediaRange(Substring(served)), let servedFormat = readableFormat(servedRange) else {
            return .unspecified
        }
        let servedVersion = servedRange.parameter("version") ?? servedFormat.defaultVersion
        let clauses = MediaRange.list(accept ?? "").enumerated().sorted { first, second in
            let (a, b) = (first.element.quality, second.element.quality)
            return a != b ? a > b : first.offset < second.offset
        }
        var escaping = NameEscaping.unspecified
        for (_, range) in clauses {
            if let named = range.parameter("escaping").flatMap(NameEscaping.init(parameter:)) { escaping = named }
            if readableFormat(range) == servedFormat,
               (range.parameter("version") ?? servedFormat.defaultVersion) == servedVersion {
                return escaping
            }
        }
        return escaping
    }

    /// Whether the scraper's Accept takes the protobuf exposition.
    static func acceptsProtobuf(_ accept: String?) -> Bool {
        MediaRange.list(accept ?? "").contains { readableFormat($0) == .protobuf && $0.quality > 0 }
    }

    /// Reads the app's response head. A missing Content-Type is text 0.0.4, as
    /// Prometheus 2.x read it (3.x fails such a scrape; the gateway's explicit type
    /// mends apps that omit it). Protobuf is taken only from an app asked for it
    /// (`protobufAsked`): a scraper that did not ask could not read it.
    static func classify(contentType: String?, contentEncoding: String?, protobufAsked: Bool = false) -> Answer {
        if let encoding = contentEncoding?.lowercased(), !encoding.isEmpty, encoding != "identity" {
            return .unreadable(reason: "Content-Encoding \(encoding), which the gateway did not ask for")
        }
        guard let contentType, !contentType.allSatisfy({ $0 == " " }) else {
            return .readable(.text, contentType: ExpositionFormat.text.contentType)
        }
        guard let range = MediaRange(Substring(contentType)) else {
            return .unreadable(reason: "an unreadable Content-Type")
        }
        guard let format = readableFormat(range) else {
            return .unreadable(reason: "media type \(range.type)\(range.parameter("proto").map { " (\($0))" } ?? "")")
        }
        if format == .protobuf {
            guard protobufAsked else { return .unreadable(reason: "protobuf, which the gateway did not ask for") }
            return .readable(.protobuf, contentType: ScrapeFormat.protobufContentType)
        }
        if let charset = range.parameter("charset")?.lowercased(), charset != "utf-8" {
            return .unreadable(reason: "charset \(charset)")
        }
        let version = range.parameter("version") ?? format.defaultVersion ?? ""
        return .readable(format, contentType: "\(range.type); version=\(version); charset=utf-8")
    }
}
