/// How the server asks for and checks client certificates: exporter-toolkit's five
/// `client_auth_type` values, which are Go's `tls.ClientAuthType`.
package enum ClientAuthPolicy: String, Sendable, Hashable, CaseIterable {
    /// No certificate is requested.
    case noClientCert = "NoClientCert"
    /// A certificate is requested but not required and not verified.
    case requestClientCert = "RequestClientCert"
    /// A certificate is required but not verified.
    case requireAnyClientCert = "RequireAnyClientCert"
    /// A certificate is optional; when given, it must verify against the client CA.
    case verifyClientCertIfGiven = "VerifyClientCertIfGiven"
    /// A certificate is required and must verify against the client CA.
    case requireAndVerifyClientCert = "RequireAndVerifyClientCert"

    /// Whether a presented certificate is checked against the client CA.
    package var verifiesCertificate: Bool {
        self == .verifyClientCertIfGiven || self == .requireAndVerifyClientCert
    }
}

/// A TLS protocol version the server may speak. TLS 1.0 and 1.1 are deprecated
/// (RFC 8996) and not offered at all.
package enum TLSProtocolVersion: Int, Sendable, Hashable, Comparable, CaseIterable {
    case tls12 = 0x0303
    case tls13 = 0x0304

    package static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Where PEM data comes from: a file (read when the context is built, so a reload
/// sees the new contents) or inline text from the configuration.
package enum PEMSource: Sendable, Hashable {
    case file(path: String)
    case inline(pem: String)
}

/// Everything needed to build a `TLSContext`. A plain value: build a new context
/// from it to reload.
package struct TLSConfiguration: Sendable, Hashable {
    /// The server's certificate, followed by any intermediates.
    package var certificateChain: PEMSource
    package var privateKey: PEMSource
    /// Trust anchors for client certificates.
    package var clientCA: PEMSource?
    package var clientAuth: ClientAuthPolicy
    /// When this or `clientAllowedSANPatterns` is not empty, a verified client
    /// certificate must carry one of these exactly as a DNS, e-mail, IP or URI
    /// subject alternative name, or a SAN one of the patterns matches.
    package var clientAllowedSANs: [String]
    /// Scrapeguard's extension: a verified client certificate may instead carry a SAN
    /// one of these matches (`SANPattern`).
    package var clientAllowedSANPatterns: [SANPattern]
    package var minimumVersion: TLSProtocolVersion
    package var maximumVersion: TLSProtocolVersion
    /// TLS 1.2 cipher suites in OpenSSL's names, in preference order. TLS 1.3 suites
    /// are not configurable (as in Go), and stay OpenSSL's secure defaults.
    package var cipherSuites: [String]
    package var preferServerCipherSuites: Bool
    /// Key-exchange groups in OpenSSL's names (`X25519`, `P-256`), in preference order.
    package var groups: [String]

    /// Mozilla's "intermediate" TLS 1.2 suites (forward secret AEADs only, no DHE).
    package static let intermediateCipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ]

    /// Mozilla's "intermediate" groups.
    package static let intermediateGroups = ["X25519", "P-256", "P-384"]

    package init(
        certificateChain: PEMSource,
        privateKey: PEMSource,
        clientCA: PEMSource? = nil,
        clientAuth: ClientAuthPolicy = .noClientCert,
        clientAllowedSANs: [String] = [],
        clientAllowedSANPatterns: [SANPattern] = [],
        minimumVersion: TLSProtocolVersion = .tls12,
        maximumVersion: TLSProtocolVersion = .tls13,
        cipherSuites: [String] = TLSConfiguration.intermediateCipherSuites,
        preferServerCipherSuites: Bool = true,
        groups: [String] = TLSConfiguration.intermediateGroups
    ) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.clientCA = clientCA
        self.clientAuth = clientAuth
        self.clientAllowedSANs = clientAllowedSANs
        self.clientAllowedSANPatterns = clientAllowedSANPatterns
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
        self.cipherSuites = cipherSuites
        self.preferServerCipherSuites = preferServerCipherSuites
        self.groups = groups
    }
}
