@testable import GatewayCore
import MetricsFilter
import Testing

/// What the gateway asks the app for, per scraper `Accept`, and what it takes back.
@Suite struct UpstreamNegotiationTests {
    /// The exact strings Prometheus sends (../shared/design/PROMETHEUS3-NOTES.md).
    static let prometheus3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    static let prometheus3NativeHistograms = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
    static let prometheus242 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

    /// 3.4+ with `metric_name_validation_scheme: legacy` (scrape_test.go's string).
    static let prometheus3Legacy = "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=underscores;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    /// 3.0 to 3.3 put `escaping=` on every clause.
    static let prometheus30 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;escaping=allow-utf-8;q=0.3,*/*;q=0.2"

    @Test(arguments: [
        (prometheus3, "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3"),
        (prometheus3NativeHistograms, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2"),
        (prometheus3Legacy, "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=underscores;q=0.4,text/plain;version=0.0.4;q=0.3"),
        (prometheus242, "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5"),
        ("*/*", "text/plain;version=0.0.4;q=0.1"),
        ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
         "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,text/plain;version=0.0.4;q=0.1"),
        ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text", "text/plain;version=0.0.4;q=0.1"),
        ("application/json, text/html", "text/plain;version=0.0.4;q=0.1"),
        ("application/openmetrics-text; version=1.0.0", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.1"),
        ("text/plain;version=2.0.0,text/plain", "text/plain"),
    ])
    func theAppIsAskedOnlyForWhatTheFilterReads(_ scraper: String, _ upstream: String) {
        #expect(UpstreamNegotiation.upstreamAccept(forScraper: scraper) == upstream)
    }

    @Test func aPolicyThatCannotFilterProtobufNeverAsksForIt() {
        #expect(UpstreamNegotiation.upstreamAccept(forScraper: Self.prometheus3NativeHistograms, protobuf: false)
            == "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2")
    }

    @Test func noAcceptAsksForText() {
        #expect(UpstreamNegotiation.upstreamAccept(forScraper: nil) == "text/plain;version=0.0.4;q=0.1")
    }

    /// The names a scraper gets, per Accept and per format served: UTF-8 only where it
    /// said `allow-utf-8` on that clause or a preferred one (prometheus/common's
    /// `NegotiateAccept` carries the last `escaping=` seen down to the clause served).
    @Test(arguments: [
        (prometheus3, "application/openmetrics-text; version=1.0.0; charset=utf-8", NameEscaping.allowUTF8),
        (prometheus3, "application/openmetrics-text; version=0.0.1; charset=utf-8", .allowUTF8),
        (prometheus3, "text/plain; version=0.0.4; charset=utf-8", .allowUTF8),
        (prometheus3NativeHistograms, "text/plain; version=1.0.0; charset=utf-8", .allowUTF8),
        // Its protobuf clause comes first and says nothing: escaped, as client_golang does.
        (prometheus3NativeHistograms, "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
         .underscores),
        (prometheus3Legacy, "application/openmetrics-text; version=1.0.0; charset=utf-8", .underscores),
        (prometheus3Legacy, "text/plain; version=0.0.4; charset=utf-8", .underscores),
        (prometheus30, "text/plain; version=0.0.4; charset=utf-8", .allowUTF8),
        (prometheus242, "application/openmetrics-text; version=1.0.0; charset=utf-8", .underscores),
        (prometheus242, "text/plain; version=0.0.4; charset=utf-8", .underscores),
        ("text/plain;version=0.0.4;escaping=dots", "text/plain; version=0.0.4; charset=utf-8", .dots),
        ("text/plain;version=0.0.4;escaping=values", "text/plain; version=0.0.4; charset=utf-8", .values),
        ("text/plain;version=0.0.4;escaping=bogus", "text/plain; version=0.0.4; charset=utf-8", .underscores),
        // A clause for another format, preferred, still carries its escaping down.
        ("application/openmetrics-text;version=1.0.0;escaping=dots,text/plain;q=0.5",
         "text/plain; version=0.0.4; charset=utf-8", .dots),
        // Order of preference, not of writing.
        ("text/plain;version=0.0.4;q=0.2,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.9",
         "text/plain; version=0.0.4; charset=utf-8", .allowUTF8),
        ("*/*", "text/plain; version=0.0.4; charset=utf-8", .underscores),
    ])
    func namesAreEscapedAsTheScraperAsked(_ scraper: String, _ served: String, _ expected: NameEscaping) {
        #expect(UpstreamNegotiation.nameEscaping(forScraper: scraper, serving: served) == expected)
    }

    @Test func noAcceptGetsUnderscores() {
        #expect(UpstreamNegotiation.nameEscaping(forScraper: nil, serving: "text/plain; version=0.0.4") == .underscores)
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
            == .readable(.exposition(ExpositionFormat(rawValue: format)!), contentType: written))
    }

    /// Protobuf is taken when the gateway asked for it (the scraper accepts it), and
    /// the scraper gets the canonical Content-Type; asked or not, a protobuf stream of
    /// another message or encoding is not.
    @Test func protobufIsTakenOnlyWhenAsked() {
        let delimited = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
        #expect(UpstreamNegotiation.classify(contentType: delimited, contentEncoding: nil, protobufAsked: true)
            == .readable(.protobuf, contentType: delimited))
        guard case .unreadable = UpstreamNegotiation.classify(contentType: delimited, contentEncoding: nil, protobufAsked: false),
              case .unreadable = UpstreamNegotiation.classify(
                contentType: "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=text",
                contentEncoding: nil, protobufAsked: true)
        else {
            Issue.record("protobuf taken when not asked for, or in another encoding")
            return
        }
        #expect(UpstreamNegotiation.acceptsProtobuf(Self.prometheus3NativeHistograms))
        #expect(!UpstreamNegotiation.acceptsProtobuf(Self.prometheus3))
        #expect(!UpstreamNegotiation.acceptsProtobuf("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0"))
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
