import GatewayTLS
import Testing

/// `client_allowed_san_patterns`: a wildcard stands for exactly one path segment or
/// one leftmost label, never more; patterns that would match everything are refused.
@Suite struct SANPatternTests {
    static let monitoring = "spiffe://cluster.local/ns/*/sa/prometheus"

    @Test(arguments: [
        (monitoring, "spiffe://cluster.local/ns/monitoring/sa/prometheus", true),
        (monitoring, "spiffe://cluster.local/ns/team-a/sa/prometheus", true),
        (monitoring, "spiffe://cluster.local/ns/monitoring/sa/intruder", false),
        (monitoring, "spiffe://cluster.local/ns/a/b/sa/prometheus", false),  // * is one segment
        (monitoring, "spiffe://cluster.local/ns/monitoring/sa/prometheus/extra", false),
        (monitoring, "spiffe://cluster.local/ns//sa/prometheus", false),  // not an empty one
        (monitoring, "spiffe://other.domain/ns/monitoring/sa/prometheus", false),  // trust domain
        (monitoring, "spiffe://cluster.localx/ns/monitoring/sa/prometheus", false),
        (monitoring, "spiffe://cluster.local.evil/ns/monitoring/sa/prometheus", false),
        (monitoring, "https://cluster.local/ns/monitoring/sa/prometheus", false),  // scheme
        (monitoring, "spiffe://cluster.local/ns/mon?x=1/sa/prometheus", false),
        ("spiffe://cluster.local/ns/monitoring/sa/*", "spiffe://cluster.local/ns/monitoring/sa/prometheus", true),
        (monitoring, "spiffe://cluster.local/ns/./sa/prometheus", false),
        (monitoring, "spiffe://cluster.local/ns/../sa/prometheus", false),
        (monitoring, "spiffe://cluster.local/ns/a%2Fb/sa/prometheus", false),
        (monitoring, "spiffe://cluster.local/ns/a/\u{338}b/sa/prometheus", false),  // one Character, two segments
        (monitoring, "spiffe://a@cluster.local/ns/monitoring/sa/prometheus", false),  // userinfo
        (monitoring, "spiffe://cluster.local:8443/ns/monitoring/sa/prometheus", false),  // port
    ])
    func uriPatterns(_ pattern: String, _ uri: String, _ matches: Bool) throws {
        let parsed = try SANPattern(pattern)
        #expect(parsed.matches(PeerIdentity(uris: [uri])) == matches, "\(pattern) ~ \(uri)")
        #expect(!parsed.matches(PeerIdentity(dnsNames: [uri])), "a URI pattern reads URI SANs only")
    }

    @Test(arguments: [
        ("*.monitoring.svc", "prometheus.monitoring.svc", true),
        ("*.monitoring.svc", "Prometheus.Monitoring.SVC", true),  // DNS has no case
        ("*.monitoring.svc", "prometheus.monitoring.svc.", true),  // rooted
        ("*.monitoring.svc", "a.b.monitoring.svc", false),  // one label only
        ("*.monitoring.svc", "monitoring.svc", false),
        ("*.monitoring.svc", "prometheus.monitoring.svc.evil.com", false),
        ("*.monitoring.svc", ".monitoring.svc", false),
        ("*.kube.local", "a.\u{212A}ube.local", false),  // the Kelvin sign lowercases to k
    ])
    func dnsPatterns(_ pattern: String, _ name: String, _ matches: Bool) throws {
        let parsed = try SANPattern(pattern)
        #expect(parsed.matches(PeerIdentity(dnsNames: [name])) == matches, "\(pattern) ~ \(name)")
        #expect(!parsed.matches(PeerIdentity(uris: [name])))
    }

    @Test(arguments: [
        ("*", "* alone would match every name"),
        ("spiffe://*/ns/monitoring/sa/prometheus", "* may stand only for a path segment, not in the scheme or the trust domain"),
        ("*://cluster.local/ns/x", "* may stand only for a path segment, not in the scheme or the trust domain"),
        ("spiffe://cluster.local/*/*/*/*", "a path of wildcards only would match every identity of the trust domain"),
        ("spiffe://cluster.local/ns/mon*/sa/prometheus", "* must be a whole path segment, not part of \"mon*\""),
        ("spiffe://cluster.local", "a URI pattern needs a path: without one it is an exact SAN"),
        ("spiffe://cluster.local/ns//sa", "empty path segment"),
        ("*.com", "a wildcard over fewer than two labels would match a whole top-level domain"),
        ("prometheus.*.svc", "a DNS pattern starts with \"*.\"; without a wildcard it is an exact SAN"),
        ("*.*.svc", "* may be only the whole leftmost label"),
        ("pro*.monitoring.svc", "a DNS pattern starts with \"*.\"; without a wildcard it is an exact SAN"),
        ("*.\u{212A}ube.local", "a pattern is printable ASCII without spaces"),
    ])
    func refusedPatterns(_ pattern: String, _ reason: String) {
        #expect(throws: SANPattern.PatternError(description: reason)) { try SANPattern(pattern) }
    }
}
