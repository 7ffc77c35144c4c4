import MetricsFilter

/// What the gateway asks the app for, and what it takes back: the formats the filter
/// reads, and nothing else. Whatever the app answers is checked before a byte is
/// forwarded, so a body the filter cannot read is a 502, never an empty or unfiltered
/// 200 (which Prometheus would record as a successful scrape with no series).
enum UpstreamNegotiation {
    /// How the app answered.
    enum Answer: Equatable {
        /// The filter reads it; the response to the scraper says `contentType`.
        case readable(ExpositionFormat, contentType: String)
        /// Not a format the filter reads, or an encoding it did not ask for.
        case unreadable(reason: String)
    }

    /// The format of a media range the filter reads, by type and version (none means
    /// the type's oldest: text 0.0.4, OpenMetrics 1.0.0).
    static func readableFormat(_ range: MediaRange) -> ExpositionFormat? {
        let version = range.parameter("version")
        switch range.type {
        case "text/plain" where version == nil || version == "0.0.4" || version == "1.0.0":
            return .text
        case "application/openmetrics-text" where version == nil || version == "1.0.0" || version == "0.0.1":
            return .openMetrics
        default:
            return nil
        }
    }

    /// The app's `Accept`: the scraper's clauses the filter can read, in the
    /// scraper's order and with its q-values, and text 0.0.4 last if it is not there;
    /// no protobuf, no `*/*`. Every clause asks for `escaping=underscores`: the
    /// filter reads legacy names only (UTF-8 names are the issue "Speak Prometheus
    /// 3"), so an app that honours `escaping=` escapes a UTF-8 name rather than send
    /// one the filter would drop.
    static func upstreamAccept(forScraper accept: String?) -> String {
        var clauses: [String] = []
        var hasText004 = false
        for range in MediaRange.list(accept ?? "") where readableFormat(range) != nil {
            var parameters = range.parameters.filter { $0.name != "escaping" && $0.name != "q" }
            parameters.append(("escaping", "underscores"))
            if let q = range.parameter("q") { parameters.append(("q", q)) }
            clauses.append(MediaRange(type: range.type, parameters: parameters).description)
            if range.type == "text/plain" && (range.parameter("version") ?? "0.0.4") == "0.0.4" { hasText004 = true }
        }
        if !hasText004 {
            clauses.append("text/plain;version=0.0.4;escaping=underscores;q=0.1")
        }
        return clauses.joined(separator: ",")
    }

    /// Reads the app's response head. A missing Content-Type is text 0.0.4, as
    /// Prometheus 2.x read it (3.x fails such a scrape; the gateway's explicit type
    /// mends apps that omit it).
    static func classify(contentType: String?, contentEncoding: String?) -> Answer {
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
        if let charset = range.parameter("charset")?.lowercased(), charset != "utf-8" {
            return .unreadable(reason: "charset \(charset)")
        }
        let version = range.parameter("version") ?? (format == .text ? "0.0.4" : "1.0.0")
        return .readable(format, contentType: "\(range.type); version=\(version); charset=utf-8")
    }
}
