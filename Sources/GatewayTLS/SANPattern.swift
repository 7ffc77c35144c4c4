/// A pattern in `client_allowed_san_patterns`: what ghostunnel allows and
/// exporter-toolkit users ask for (its PR 126), with a wildcard that stands for
/// exactly one part of a name, never more:
/// - a URI (`spiffe://cluster.local/ns/*/sa/prometheus`): scheme and authority (the
///   SPIFFE trust domain) literal, each `*` one whole path segment (not empty, no
///   `/`), as many segments as the pattern has;
/// - a DNS name (`*.monitoring.svc.cluster.local`): `*` as the whole leftmost label,
///   one label (not empty, no `.`), compared without case as DNS names are.
///
/// A pattern that would match every identity (`*`, a wildcard in the scheme or the
/// trust domain, a path of wildcards only, a DNS wildcard over fewer than two labels)
/// or that uses `*` inside a segment or label is refused when it is read.
package struct SANPattern: Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Hashable {
        /// `scheme://authority` and the path's segments (nil: any one segment).
        case uri(prefix: String, segments: [String?])
        /// The labels after the leftmost wildcard, lowercased.
        case dns(suffix: [String])
    }

    private let kind: Kind
    package let description: String

    /// Parses a pattern; throws the reason it is refused.
    package init(_ text: String) throws(PatternError) {
        description = text
        // ASCII only, compared byte for byte: no Unicode case folding or combining
        // marks can make two different names look alike.
        guard text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw PatternError(description: "a pattern is printable ASCII without spaces")
        }
        if text.contains("://") {
            kind = try Self.parseURI(text)
        } else {
            kind = try Self.parseDNS(text)
        }
    }

    package struct PatternError: Error, Equatable, CustomStringConvertible {
        package var description: String

        package init(description: String) {
            self.description = description
        }
    }

    /// Whether a certificate's SANs hold a name this pattern matches.
    package func matches(_ peer: PeerIdentity) -> Bool {
        switch kind {
        case .uri(let prefix, let segments):
            return peer.uris.contains { Self.uri($0, matches: prefix, segments) }
        case .dns(let suffix):
            return peer.dnsNames.contains { Self.dns($0, matches: suffix) }
        }
    }

    // MARK: - Reading

    private static func parseURI(_ text: String) throws(PatternError) -> Kind {
        let halves = text.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
        guard halves.count == 2 else { throw PatternError(description: "not a URI") }
        let scheme = halves[0]
        let rest = halves[1]
        let authority = rest.prefix { $0 != "/" }
        guard !scheme.isEmpty, !authority.isEmpty else {
            throw PatternError(description: "a URI pattern needs a scheme and an authority (the trust domain)")
        }
        guard !scheme.contains("*"), !authority.contains("*") else {
            throw PatternError(description: "* may stand only for a path segment, not in the scheme or the trust domain")
        }
        let path = rest.dropFirst(authority.count)
        guard path.hasPrefix("/"), path.count > 1 else {
            throw PatternError(description: "a URI pattern needs a path: without one it is an exact SAN")
        }
        let parts = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var segments: [String?] = []
        for part in parts {
            if part == "*" {
                segments.append(nil)
            } else if part.contains("*") {
                throw PatternError(description: "* must be a whole path segment, not part of \"\(part)\"")
            } else if part.isEmpty {
                throw PatternError(description: "empty path segment")
            } else {
                segments.append(part)
            }
        }
        guard segments.contains(where: { $0 != nil }) else {
            throw PatternError(description: "a path of wildcards only would match every identity of the trust domain")
        }
        return .uri(prefix: "\(scheme)://\(authority)", segments: segments)
    }

    private static func parseDNS(_ text: String) throws(PatternError) -> Kind {
        guard text != "*" else { throw PatternError(description: "* alone would match every name") }
        let labels = text.lowercased().split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard labels.first == "*" else {
            throw PatternError(description: "a DNS pattern starts with \"*.\"; without a wildcard it is an exact SAN")
        }
        let suffix = Array(labels.dropFirst())
        guard !suffix.contains(where: { $0.contains("*") }) else {
            throw PatternError(description: "* may be only the whole leftmost label")
        }
        guard !suffix.contains(where: \.isEmpty) else { throw PatternError(description: "empty DNS label") }
        guard suffix.count >= 2 else {
            throw PatternError(description: "a wildcard over fewer than two labels would match a whole top-level domain")
        }
        return .dns(suffix: suffix)
    }

    // MARK: - Matching

    private static func uri(_ name: String, matches prefix: String, _ segments: [String?]) -> Bool {
        guard isPlainASCII(name), name.hasPrefix(prefix) else { return false }
        let path = name.dropFirst(prefix.count)
        guard path.hasPrefix("/") else { return false }
        let parts = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == segments.count else { return false }
        for (part, segment) in zip(parts, segments) {
            if let segment {
                guard part == segment else { return false }
            } else {
                // One plain segment: not empty, not `.` or `..`, no percent-encoding,
                // query or fragment riding along.
                guard !part.isEmpty, part != ".", part != "..",
                    !part.contains(where: { $0 == "?" || $0 == "#" || $0 == "%" })
                else { return false }
            }
        }
        return true
    }

    private static func dns(_ name: String, matches suffix: [String]) -> Bool {
        guard isPlainASCII(name) else { return false }
        var labels = name.lowercased().split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if labels.last == "" { labels.removeLast() }  // a rooted name, "host.example.com."
        guard labels.count == suffix.count + 1, let first = labels.first, !first.isEmpty else { return false }
        return Array(labels.dropFirst()) == suffix
    }

    private static func isPlainASCII(_ name: String) -> Bool {
        name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }
}
