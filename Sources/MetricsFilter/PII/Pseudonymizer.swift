internal import COpenSSL

/// HMAC-SHA256 under one key, set up once: each pseudonym duplicates a keyed
/// template instead of fetching the algorithm and keying it again (which costs more
/// than the hash itself in OpenSSL 3).
final class Pseudonymizer: @unchecked Sendable {
    // @unchecked: the template is never changed after init; each use works on a copy.
    private let mac: OpaquePointer?
    private let template: OpaquePointer?

    init(key: [UInt8]) {
        let mac = key.isEmpty ? nil : EVP_MAC_fetch(nil, "HMAC", nil)
        var template: OpaquePointer?
        if !key.isEmpty, let mac, let context = EVP_MAC_CTX_new(mac) {
            // OSSL_PARAM keeps pointers to its key and value: both must outlive the call.
            var parameterName = Array("digest".utf8CString)
            var digest = Array("SHA256".utf8CString)
            let keyed: Int32 = parameterName.withUnsafeMutableBufferPointer { name in
                digest.withUnsafeMutableBufferPointer { value in
                    var parameters = [
                        OSSL_PARAM_construct_utf8_string(name.baseAddress, value.baseAddress, 0),
                        OSSL_PARAM_construct_end(),
                    ]
                    return key.withUnsafeBufferPointer { keyBytes in
                        parameters.withUnsafeMutableBufferPointer { list in
                            EVP_MAC_init(context, keyBytes.baseAddress, keyBytes.count, list.baseAddress)
                        }
                    }
                }
            }
            if keyed == 1 { template = context } else { EVP_MAC_CTX_free(context) }
        }
        self.mac = mac
        self.template = template
    }

    deinit {
        EVP_MAC_CTX_free(template)
        EVP_MAC_free(mac)
    }

    /// `h_` and the first 16 hex digits of HMAC-SHA256(key, value); nil if OpenSSL failed.
    func pseudonym(_ value: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        makeWriter()?.pseudonym(value)
    }

    /// A context of its own for one user at a time (a scrape): it is keyed once, here,
    /// and only re-initialized per value, so a pseudonym allocates nothing in OpenSSL.
    func makeWriter() -> PseudonymWriter? {
        guard let template, let context = EVP_MAC_CTX_dup(template) else { return nil }
        return PseudonymWriter(context: context)
    }
}

/// Writes pseudonyms with one keyed HMAC context. Not thread-safe: one per scrape.
final class PseudonymWriter {
    private let context: OpaquePointer

    fileprivate init(context: OpaquePointer) {
        self.context = context
    }

    deinit {
        EVP_MAC_CTX_free(context)
    }

    /// `h_` and the first 16 hex digits of HMAC-SHA256(key, value); nil if OpenSSL failed.
    func pseudonym(_ value: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        // With no key, HMAC's init starts over under the key it holds.
        guard EVP_MAC_init(context, nil, 0, nil) == 1 else { return nil }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { digest -> [UInt8]? in
            var length = 0
            guard EVP_MAC_update(context, value.baseAddress, value.count) == 1,
                EVP_MAC_final(context, digest.baseAddress, &length, digest.count) == 1 else { return nil }
            let hex: StaticString = "0123456789abcdef"
            return [UInt8](unsafeUninitializedCapacity: 18) { output, count in
                output[0] = UInt8(ascii: "h")
                output[1] = UInt8(ascii: "_")
                for index in 0..<8 {
                    output[2 + 2 * index] = hex.utf8Start[Int(digest[index] >> 4)]
                    output[3 + 2 * index] = hex.utf8Start[Int(digest[index] & 0x0F)]
                }
                count = 18
            }
        }
    }
}
