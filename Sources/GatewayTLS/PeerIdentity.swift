internal import COpenSSL
internal import COpenSSLShims

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Who the client proved to be with its certificate: the parts of the leaf that
/// access rules and logs use.
package struct PeerIdentity: Sendable, Hashable {
    package var commonName: String?
    package var dnsNames: [String]
    package var emailAddresses: [String]
    /// In their usual text form: `127.0.0.1`, `::1`.
    package var ipAddresses: [String]
    package var uris: [String]
    /// The certificate's serial number in upper-case hex.
    package var serialNumber: String

    package init(
        commonName: String? = nil, dnsNames: [String] = [], emailAddresses: [String] = [],
        ipAddresses: [String] = [], uris: [String] = [], serialNumber: String = ""
    ) {
        self.commonName = commonName
        self.dnsNames = dnsNames
        self.emailAddresses = emailAddresses
        self.ipAddresses = ipAddresses
        self.uris = uris
        self.serialNumber = serialNumber
    }

    /// All subject alternative names, of every kind.
    package var subjectAlternativeNames: [String] {
        dnsNames + emailAddresses + ipAddresses + uris
    }

    /// exporter-toolkit's `client_allowed_sans` rule: an exact match of any SAN.
    package func hasAnySAN(in allowed: [String]) -> Bool {
        let names = subjectAlternativeNames
        return allowed.contains { names.contains($0) }
    }

    /// Reads the identity of an OpenSSL certificate (not consumed).
    init(certificate: OpaquePointer) {
        var identity = PeerIdentity()
        if let sans = sg_x509_sans(certificate) {
            defer { sg_sans_free(sans) }
            for index in 0..<sg_sans_count(sans) {
                var data: UnsafePointer<UInt8>?
                var length: Int32 = 0
                let type = sg_sans_get(sans, index, &data, &length)
                guard let data, length >= 0 else { continue }
                let bytes = UnsafeBufferPointer(start: data, count: Int(length))
                switch type {
                case sg_GEN_DNS: identity.dnsNames.append(String(decoding: bytes, as: UTF8.self))
                case sg_GEN_EMAIL: identity.emailAddresses.append(String(decoding: bytes, as: UTF8.self))
                case sg_GEN_URI: identity.uris.append(String(decoding: bytes, as: UTF8.self))
                case sg_GEN_IPADD:
                    if let text = Self.ipAddressText(bytes) { identity.ipAddresses.append(text) }
                default: break
                }
            }
        }
        identity.commonName = Self.commonName(of: certificate)
        identity.serialNumber = Self.serialNumber(of: certificate)
        self = identity
    }

    private static func ipAddressText(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return nil
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, bytes.baseAddress, &text, socklen_t(text.count)) != nil else { return nil }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func commonName(of certificate: OpaquePointer) -> String? {
        guard let subject = X509_get_subject_name(certificate) else { return nil }
        let index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(subject, index),
            let data = X509_NAME_ENTRY_get_data(entry)
        else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, data)
        guard length >= 0, let utf8 else { return nil }
        defer { sg_OPENSSL_free(utf8) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
    }

    private static func serialNumber(of certificate: OpaquePointer) -> String {
        guard let serial = X509_get0_serialNumber(certificate),
            let bignum = ASN1_INTEGER_to_BN(serial, nil)
        else { return "" }
        defer { BN_free(bignum) }
        guard let hex = BN_bn2hex(bignum) else { return "" }
        defer { sg_OPENSSL_free(hex) }
        return String(cString: hex)
    }
}
