internal import COpenSSLShims

/// HMAC-SHA256 under one key, set up once: the key's two pad blocks are hashed when it
/// is made, and each pseudonym starts from copies of those states (the C shims'
/// `sg_hmac_*`, hmac.c, which says why not EVP_MAC).
final class Pseudonymizer: @unchecked Sendable {
    // @unchecked: the template is never changed after init; hashing only reads it.
    private let template: OpaquePointer?

    init(key: [UInt8]) {
        template = key.withUnsafeBufferPointer { sg_hmac_sha256_new($0.baseAddress, $0.count) }
    }

    deinit {
        sg_hmac_free(template)
    }

    /// `h_` and the first 16 hex digits of HMAC-SHA256(key, value); nil if OpenSSL failed.
    func pseudonym(_ value: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        inlinePseudonym(value)?.withBytes { Array($0) }
    }

    /// The same, held inline: nothing is allocated. Safe from scrapes at once: hashing
    /// starts from copies of the template's states and never changes it.
    func inlinePseudonym(_ value: UnsafeBufferPointer<UInt8>) -> Pseudonym? {
        guard let template else { return nil }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { digest -> Pseudonym? in
            guard sg_hmac_compute(template, value.baseAddress, value.count, digest.baseAddress) == 1 else { return nil }
            return Pseudonym(digest: UnsafeBufferPointer(digest))
        }
    }
}

/// A pseudonym, `h_` and 16 hex digits, held inline: making one allocates nothing.
struct Pseudonym {
    static let count = 18
    private var storage: (UInt64, UInt64, UInt64) = (0, 0, 0)

    /// From the first 8 bytes of a digest.
    fileprivate init(digest: UnsafeBufferPointer<UInt8>) {
        let hex: StaticString = "0123456789abcdef"
        withUnsafeMutableBytes(of: &storage) { output in
            output[0] = UInt8(ascii: "h")
            output[1] = UInt8(ascii: "_")
            for index in 0..<8 {
                output[2 + 2 * index] = hex.utf8Start[Int(digest[index] >> 4)]
                output[3 + 2 * index] = hex.utf8Start[Int(digest[index] & 0x0F)]
            }
        }
    }

    func withBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        try withUnsafeBytes(of: storage) { raw in
            try raw.withMemoryRebound(to: UInt8.self) { try body(UnsafeBufferPointer(rebasing: $0[0..<Self.count])) }
        }
    }
}
