@testable import GatewayCore
import GatewayTLS
import NIOCore
import NIOHTTP1
import Testing

/// The small parsers behind the configuration and the request path.
@Suite struct ConfigurationValueTests {
    @Test(arguments: [
        ("10s", 10_000 as Int64?), ("1m30s", 90_000), ("500ms", 500), ("1h", 3_600_000), ("0", 0),
        ("2d", 172_800_000), ("1y", 31_536_000_000),
        ("10", nil), ("1s1m", nil), ("-1s", nil), ("1.5s", nil), ("", nil), ("10 s", nil), ("5x", nil),
    ])
    func prometheusDurations(_ text: String, _ milliseconds: Int64?) {
        #expect(PrometheusDuration.parse(text).map { $0.nanoseconds / 1_000_000 } == milliseconds)
    }

    @Test(arguments: [
        ("1024", 1024 as Int?), ("64MiB", 64 << 20), ("512KiB", 512 << 10), ("1GiB", 1 << 30), ("10MB", 10_000_000),
        ("5B", 5), ("-1", nil), ("MiB", nil), ("1.5MiB", nil), ("lots", nil),
    ])
    func byteSizes(_ text: String, _ bytes: Int?) {
        #expect(ByteSize.parse(text) == bytes)
    }

    @Test func upstreamURLs() throws {
        let plain = try UpstreamURL(parsing: "http://127.0.0.1:8000/metrics?x=1")
        #expect(plain.host == "127.0.0.1" && plain.port == 8000 && plain.pathAndQuery == "/metrics?x=1")
        #expect(plain.hostHeader == "127.0.0.1:8000")
        let defaults = try UpstreamURL(parsing: "http://localhost")
        #expect(defaults.port == 80 && defaults.pathAndQuery == "/metrics" && defaults.hostHeader == "localhost")
        let v6 = try UpstreamURL(parsing: "http://[::1]:9100/m")
        #expect(v6.host == "::1" && v6.port == 9100 && v6.hostHeader == "[::1]:9100")
        for bad in ["https://127.0.0.1/metrics", "127.0.0.1:8000", "http://:80/", "http://h:0/", "http://h:99999/",
                    "http://user:pw@h/", "http://[::1/"] {
            #expect(throws: UpstreamURL.Invalid.self, "\(bad)") { try UpstreamURL(parsing: bad) }
        }
    }

    /// What a scraper's `Accept-Encoding` says of gzip: `q=0` in any spelling refuses it.
    @Test(arguments: [
        ("gzip", true), ("x-gzip", true), ("*", true), ("GZIP", true), ("identity, gzip;q=0.5", true),
        ("gzip;q=0.0001", true), ("gzip;q=1", true), ("deflate, br", false), (nil as String?, false), ("", false),
        ("gzip;q=0", false), ("gzip; q = 0", false), ("gzip;Q=0", false), ("gzip;q=0.", false), ("gzip;q=0.000", false),
        ("gzip;q=0, *;q=0", false), ("gzip;q=0, *", true),
    ])
    func gzipAcceptance(_ header: String?, _ accepted: Bool) {
        #expect(GzipEncoder.accepts(header) == accepted)
    }

    /// logfmt as go-logfmt writes it: a value with a space, a control character, `=`
    /// or `"` (or an empty one) quoted, with JSON's escapes.
    @Test func logfmtQuotesWhatWouldSplitALine() {
        let line = StructuredLogHandler.logfmt([
            ("a", "plain"), ("b", ""), ("c", "two words"), ("d", "x=y"), ("e", "say \"hi\""),
            ("f", "line\r\nbreak"), ("g", "tab\there"), ("h", "back\\slash"), ("i", "bell\u{7}"),
        ])
        #expect(line == #"a=plain b="" c="two words" d="x=y" e="say \"hi\"" f="line\r\nbreak" g="tab\there" h=back\slash i="bell\u0007""#)
        #expect(StructuredLogHandler.json([("msg", "a\"b\n")]) == #"{"msg":"a\"b\n"}"#)
    }

    @Test func basicAuthorizationHeaders() {
        #expect(BasicAuthenticator.parseBasic("Basic cHJvbWV0aGV1czpwYTpzcw==")! == ("prometheus", "pa:ss"))
        #expect(BasicAuthenticator.parseBasic("basic dXNlcjo=")! == ("user", ""))
        #expect(BasicAuthenticator.parseBasic("Bearer abc") == nil)
        #expect(BasicAuthenticator.parseBasic("Basic !!!") == nil)
        #expect(BasicAuthenticator.parseBasic("Basic bm9jb2xvbg==") == nil)  // "nocolon"
    }

    @Test func scrapeTimeoutFollowsPrometheusWithAMargin() {
        let configured = Duration.seconds(10)
        #expect(ScrapeTimeout.effective(headers: [:], configured: configured) == configured)
        #expect(ScrapeTimeout.effective(headers: ["X-Prometheus-Scrape-Timeout-Seconds": "10"], configured: configured) == .milliseconds(9500))
        #expect(ScrapeTimeout.effective(headers: ["X-Prometheus-Scrape-Timeout-Seconds": "1"], configured: configured) == .milliseconds(900))
        #expect(ScrapeTimeout.effective(headers: ["X-Prometheus-Scrape-Timeout-Seconds": "nonsense"], configured: configured) == configured)
        #expect(ScrapeTimeout.effective(headers: ["X-Prometheus-Scrape-Timeout-Seconds": "-3"], configured: configured) == configured)
    }

    @Test func bcryptShapes() {
        #expect(BcryptHash.isWellFormed(BcryptHash.hash(password: "x", cost: 4)!))
        #expect(!BcryptHash.isWellFormed("$2y$10$short"))
        #expect(!BcryptHash.isWellFormed("$1$abc$" + String(repeating: "a", count: 53)))
        #expect(BcryptHash.verify(password: "x", hash: "not-a-hash") == .unusableHash)
    }

    /// The hash an unknown user is checked against, made without a bcrypt: libcrypt
    /// takes it as a real one (a mismatch, never "unusable", which would return at
    /// once and tell a wrong user name from a wrong password), at the cost asked for.
    @Test(arguments: [4, 5, 10])
    func aDecoyHashIsCheckedInFullAndNeverMatches(_ cost: Int) {
        let decoy = BcryptHash.decoy(cost: cost)
        #expect(BcryptHash.isWellFormed(decoy) && BcryptHash.cost(of: decoy) == cost, "\(decoy)")
        if cost < 10 {
            for password in ["", "x", "prometheus", String(repeating: "p", count: 72)] {
                #expect(BcryptHash.verify(password: password, hash: decoy) == .mismatch, "\(decoy)")
            }
        }
        #expect(BcryptHash.decoy(cost: cost) != decoy)
    }
}
