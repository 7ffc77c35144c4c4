/// Go's `crypto/tls` names, as web-config.yml uses them, mapped to OpenSSL's.
enum GoTLSNames {
    enum CipherSuite: Equatable {
        case tls12(openSSLName: String)
        /// A TLS 1.3 suite: accepted, but not configurable (in Go and here).
        case tls13
        /// In Go's `tls.InsecureCipherSuites()`: exporter-toolkit refuses them.
        case insecure
        case unknown
    }

    /// Go's `tls.CipherSuites()` for TLS 1.0–1.2. The four `TLS_RSA_*` suites have no
    /// forward secrecy; Go lists them as secure and so they are accepted when named.
    private static let secureTLS12: [String: String] = [
        "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
        "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
        "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
        "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    ]

    private static let tls13: Set<String> = [
        "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    ]

    /// Go's `tls.InsecureCipherSuites()`.
    private static let insecure: Set<String> = [
        "TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    ]

    static func cipherSuite(_ goName: String) -> CipherSuite {
        if let name = secureTLS12[goName] { return .tls12(openSSLName: name) }
        if tls13.contains(goName) { return .tls13 }
        if insecure.contains(goName) { return .insecure }
        return .unknown
    }

    private static let groups: [(go: String, openSSL: String)] = [
        ("CurveP256", "P-256"), ("CurveP384", "P-384"), ("CurveP521", "P-521"), ("X25519", "X25519"),
    ]

    static var groupNames: [String] { groups.map(\.go) }

    static func group(_ goName: String) -> String? {
        groups.first { $0.go == goName }?.openSSL
    }
}
