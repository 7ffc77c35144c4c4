@testable import GatewayCore
import MetricsFilter
import Testing

/// What the gateway asks the app for, per scraper `Accept`, and what it takes back.
@Suite struct UpstreamNegotiationTests {
    /// The exact strings Prometheus sends (../shared/design/PROMETHEUS3-NOTES.md).
    static let prometheus3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    static let prometheus3NativeHistograms = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
    static let prometheus242 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

    @Test(arguments: [
        (prometheus3, "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,application/openmetrics-text;version=0.0.1;escaping=underscores;q=0.5,text/plain;version=1.0.0;escaping=underscores;q=0.4,text/plain;version=0.0.4;escaping=underscores;q=0.3"),
        (prometheus3NativeHistograms, "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,application/openmetrics-text;version=0.0.1;escaping=underscores;q=0.4,text/plain;version=1.0.0;escaping=underscores;q=0.3,text/plain;version=0.0.4;escaping=underscores;q=0.2"),
        (prometheus242, "application/openmetrics-text;version=1.0.0;escaping=underscores,application/openmetrics-text;version=0.0.1;escaping=underscores;q=0.75,text/plain;version=0.0.4;escaping=underscores;q=0.5"),
        ("*/*", "text/plain;version=0.0.4;escaping=underscores;q=0.1"),
        ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "text/plain;version=0.0.4;escaping=underscores;q=0.1"),
        ("application/json, text/html", "text/plain;version=0.0.4;escaping=underscores;q=0.1"),
        ("application/openmetrics-text; version=1.0.0", "application/openmetrics-text;version=1.0.0;escaping=underscores,text/plain;version=0.0.4;escaping=underscores;q=0.1"),
        ("text/plain;version=2.0.0,text/plain", "text/plain;escaping=underscores"),
    ])
    func theAppIsAskedOnlyForWhatTheFilterReads(_ scraper: String, _ upstream: String) {
        #expect(UpstreamNegotiation.upstreamAccept(forScraper: scraper) == upstream)
    }

    @Test func noAcceptAsksForText() {
        #expect(UpstreamNegotiation.upstreamAccept(forScraper: nil) == "text/plain;version=0.0.4;escaping=underscores;q=0.1")
    }

    @Test(arguments: [
        ("text/plain; version=0.0.4; charset=utf-8", nil as String?, "text", "text/plain; version=0.0.4; charset=utf-8"),
        ("text/plain; version=0.0.4", nil, "text", "text/plain; version=0.0.4; charset=utf-8"),
        ("text/plain", nil, "text", "text/plain; version=0.0.4; charset=utf-8"),
        ("text/plain; version=1.0.0; charset=utf-8; escaping=underscores", nil, "text", "text/plain; version=1.0.0; charset=utf-8"),
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", nil, "openmetrics",
         "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        ("application/openmetrics-text; version=0.0.1", nil, "openmetrics", "application/openmetrics-text; version=0.0.1; charset=utf-8"),
        ("Text/Plain; Version=0.0.4", nil, "text", "text/plain; version=0.0.4; charset=utf-8"),
        ("text/plain; version=0.0.4", "identity", "text", "text/plain; version=0.0.4; charset=utf-8"),
    ])
    func readableAnswers(_ contentType: String, _ encoding: String?, _ format: String, _ written: String) {
        #expect(UpstreamNegotiation.classify(contentType: contentType, contentEncoding: encoding)
            == .readable(ExpositionFormat(rawValue: format)!, contentType: written))
    }

    /// A missing Content-Type is read as text 0.0.4, as Prometheus 2.x did; the
    /// gateway's own type then mends the app for 3.x.
    @Test func aMissingContentTypeIsText() {
        #expect(UpstreamNegotiation.classify(contentType: nil, contentEncoding: nil)
            == .readable(.text, contentType: "text/plain; version=0.0.4; charset=utf-8"))
    }

    @Test(arguments: [
        ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited", nil as String?),
        ("application/json", nil),
        ("text/html; charset=utf-8", nil),
        ("text/plain; version=2.0.0", nil),
        ("text/plain; version=0.0.4; charset=iso-8859-1", nil),
        ("garbage", nil),
        ("text/plain; version=0.0.4", "gzip"),
        ("text/plain; version=0.0.4", "br"),
    ])
    func unreadableAnswersAreRefused(_ contentType: String, _ encoding: String?) {
        guard case .unreadable = UpstreamNegotiation.classify(contentType: contentType, contentEncoding: encoding) else {
            Issue.record("\(contentType) \(encoding ?? "") was taken as readable")
            return
        }
    }
}
