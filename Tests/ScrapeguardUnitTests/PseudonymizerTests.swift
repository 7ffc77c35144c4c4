import COpenSSLShims
@testable import MetricsFilter
import Testing
import TestSupport

/// The pseudonym is HMAC-SHA256 computed from saved pad-block states (hmac.c), not
/// through EVP_MAC: held to RFC 4231's vectors and to OpenSSL's own `HMAC()`.
@Suite struct PseudonymizerTests {
    private static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    /// `h_` and the first 16 hex digits of the full HMAC, as `Pseudonymizer` gives it.
    private static func pseudonym(key: [UInt8], value: [UInt8]) -> String? {
        let pseudonymizer = Pseudonymizer(key: key)
        return value.withUnsafeBufferPointer { pseudonymizer.pseudonym($0) }.map { String(decoding: $0, as: UTF8.self) }
    }

    private static func reference(key: [UInt8], value: [UInt8]) -> String? {
        var digest = [UInt8](repeating: 0, count: 32)
        let ok = value.withUnsafeBufferPointer { data in
            sg_hmac_sha256_reference(key, key.count, data.baseAddress, data.count, &digest)
        }
        return ok == 1 ? "h_" + hex(Array(digest.prefix(8))) : nil
    }

    /// RFC 4231, test cases 1, 2, 6 and 7: a short key, a key shorter than its data, and
    /// a 131-byte key (longer than SHA-256's block, so hashed first) with short and long data.
    @Test(arguments: [
        ([UInt8](repeating: 0x0B, count: 20), "Hi There", "b0344c61d8db3853"),
        (Array("Jefe".utf8), "what do ya want for nothing?", "5bdcc146bf60754e"),
        ([UInt8](repeating: 0xAA, count: 131), "Test Using Larger Than Block-Size Key - Hash Key First", "60e431591ee0b67f"),
        ([UInt8](repeating: 0xAA, count: 131),
         "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
         "9b09ffa71b942fcb"),
    ])
    func rfc4231Vectors(key: [UInt8], data: String, expected: String) {
        #expect(Self.pseudonym(key: key, value: Array(data.utf8)) == "h_" + expected)
    }

    /// Generated keys and values (fixed seed) around SHA-256's block and padding edges:
    /// keys of 1 to 200 bytes (64 and 65 on either side of hashing the key), values of
    /// 0 to 300 bytes (55/56 and 119/120 where the length spills into another block).
    @Test func equalsOpenSSLsHMACOnGeneratedKeysAndValues() {
        var random = SplitMix64(seed: 0x5EED_4A11)
        let keyLengths = [1, 16, 32, 63, 64, 65, 127, 128, 129, 200] + (0..<20).map { _ in Int.random(in: 1...200, using: &random) }
        let valueLengths = [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 300] + (0..<20).map { _ in Int.random(in: 0...300, using: &random) }
        var compared = 0
        for keyLength in keyLengths {
            let key = (0..<keyLength).map { _ in UInt8.random(in: 0...255, using: &random) }
            let pseudonymizer = Pseudonymizer(key: key)
            // One pseudonymizer for every value, as every scrape shares it: each value
            // starts over from the key's states.
            let ofNothing = [UInt8]().withUnsafeBufferPointer { pseudonymizer.inlinePseudonym($0) }
            #expect(ofNothing != nil)
            for valueLength in valueLengths {
                let value = (0..<valueLength).map { _ in UInt8.random(in: 0...255, using: &random) }
                let expected = Self.reference(key: key, value: value)
                #expect(expected != nil)
                let made = value.withUnsafeBufferPointer { pseudonymizer.inlinePseudonym($0) }?.withBytes {
                    String(decoding: $0, as: UTF8.self)
                }
                #expect(made == expected, "key \(keyLength) bytes, value \(valueLength) bytes")
                compared += 1
            }
        }
        #expect(compared == keyLengths.count * valueLengths.count)
    }

    /// The whole digest, not only the pseudonym's 8 bytes, from the shim itself.
    @Test func theWholeDigestEqualsOpenSSLsHMAC() {
        var random = SplitMix64(seed: 0xD16E_57)
        for keyLength in [1, 64, 65, 100] {
            let key = (0..<keyLength).map { _ in UInt8.random(in: 0...255, using: &random) }
            guard let hmac = sg_hmac_sha256_new(key, key.count) else {
                Issue.record("no HMAC for a \(keyLength)-byte key")
                continue
            }
            defer { sg_hmac_free(hmac) }
            for valueLength in [0, 55, 56, 64, 200] {
                let value = (0..<valueLength).map { _ in UInt8.random(in: 0...255, using: &random) }
                var made = [UInt8](repeating: 0, count: 32)
                var expected = [UInt8](repeating: 1, count: 32)
                let computed = value.withUnsafeBufferPointer { sg_hmac_compute(hmac, $0.baseAddress, $0.count, &made) }
                let referenced = value.withUnsafeBufferPointer {
                    sg_hmac_sha256_reference(key, key.count, $0.baseAddress, $0.count, &expected)
                }
                #expect(computed == 1 && referenced == 1)
                #expect(made == expected, "key \(keyLength) bytes, value \(valueLength) bytes")
            }
        }
    }

    /// The report names each count by `PIICounts.actions`, and counting places it by
    /// `index(of:)`: each is the other's inverse, over every action.
    @Test func everyPIIActionIsCountedUnderItsOwnName() {
        #expect(Set(PIICounts.actions) == Set(PIIAction.allCases))
        #expect(PIICounts.actions.count == PIIAction.allCases.count)
        for action in PIIAction.allCases {
            #expect(PIICounts.actions[PIICounts.index(of: action)] == action)
        }
    }

    @Test func anEmptyKeyMakesNoPseudonyms() {
        #expect(Self.pseudonym(key: [], value: Array("x".utf8)) == nil)
    }
}
