internal import COpenSSLShims

/// bcrypt through libcrypt (`crypt_r`), the same `$2a$`/`$2b$`/`$2y$` hashes that
/// exporter-toolkit and `htpasswd -B` write.
///
/// Over the password's bytes as Go's `golang.org/x/crypto/bcrypt` (exporter-toolkit's)
/// treats them:
/// - a password with a NUL byte never matches. Go hashes every byte, the NUL and what
///   follows included; `crypt_r` would stop at the NUL, so `pw\0anything` would pass
///   for `pw`. Only a hash made by Go from that very NUL-bearing password could match
///   one there, and `htpasswd` and crypt cannot make such a hash.
/// - past 72 bytes, only the first 72 count, in Go's comparison as in libcrypt's (the
///   Blowfish key schedule takes 72 bytes). Go refuses to make a hash of more than 72
///   bytes, and so does `hash(password:)`.
package enum BcryptHash {
    /// The most bytes of a password that bcrypt reads.
    package static let maximumPasswordBytes = 72

    package enum Verdict: Sendable, Equatable {
        case match
        case mismatch
        case unusableHash
    }

    /// The shape of a bcrypt hash: `$2y$10$` and 53 characters of salt and digest.
    package static func isWellFormed(_ hash: String) -> Bool {
        let bytes = Array(hash.utf8)
        guard bytes.count == 60, bytes[0] == UInt8(ascii: "$"), bytes[1] == UInt8(ascii: "2"),
            [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(bytes[2]),
            bytes[3] == UInt8(ascii: "$"), bytes[6] == UInt8(ascii: "$"),
            let cost = Int(String(decoding: bytes[4..<6], as: UTF8.self)), (4...31).contains(cost)
        else { return false }
        let alphabet = Set("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        return bytes[7...].allSatisfy { alphabet.contains($0) }
    }

    /// The cost a `$2?$NN$...` hash declares, well-formed or not.
    package static func declaredCost(of hash: String) -> Int? {
        let bytes = Array(hash.utf8)
        guard bytes.count >= 7, bytes[0] == UInt8(ascii: "$"), bytes[1] == UInt8(ascii: "2"),
            bytes[3] == UInt8(ascii: "$"), bytes[6] == UInt8(ascii: "$")
        else { return nil }
        return Int(String(decoding: bytes[4..<6], as: UTF8.self))
    }

    /// The cost factor of a well-formed hash.
    package static func cost(of hash: String) -> Int? {
        guard isWellFormed(hash) else { return nil }
        return Int(hash.dropFirst(4).prefix(2))
    }

    /// Checks `password` against `hash`; slow by design (tens of milliseconds).
    package static func verify(password: String, hash: String) -> Verdict {
        if password.utf8.contains(0) {
            return isWellFormed(hash) ? .mismatch : .unusableHash
        }
        switch sg_bcrypt_verify(password, hash) {
        case 1: return .match
        case 0: return .mismatch
        default: return .unusableHash
        }
    }

    /// A well-formed `$2y$` hash of `cost` with a random salt and a random digest, made
    /// without running bcrypt: checking any password against it costs a full bcrypt
    /// (the digest is only compared at the end) and never matches (a password would
    /// have to hit 184 random bits). What an unknown user is checked against, so that
    /// a wrong user name takes as long as a wrong password, without a bcrypt at start-up.
    package static func decoy(cost: Int) -> String {
        let alphabet = Array("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        // The last character of the salt (22) and of the digest (31) carries spare bits,
        // which must be zero: these four have them so.
        let lastCharacters = Array(".Oeu".utf8)
        let random = Digest.randomBytes(53)
        var text = Array("$2y$".utf8) + Array(String(min(max(cost, 4), 31)).utf8).paddedTo2() + [UInt8(ascii: "$")]
        for (index, byte) in random.enumerated() {
            let last = index == 21 || index == 52
            text.append(last ? lastCharacters[Int(byte) % lastCharacters.count] : alphabet[Int(byte) % alphabet.count])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// A new `$2y$` hash with a random salt; nil for a password bcrypt cannot hash
    /// whole (a NUL byte, more than 72 bytes).
    package static func hash(password: String, cost: Int = 10) -> String? {
        guard !password.utf8.contains(0), password.utf8.count <= maximumPasswordBytes else { return nil }
        var output = [CChar](repeating: 0, count: 128)
        guard sg_bcrypt_hash(password, Int32(cost), &output, output.count) == 0 else { return nil }
        return String(decoding: output.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    /// Two digits, with a leading zero for a one-digit number (a bcrypt cost).
    fileprivate func paddedTo2() -> [UInt8] {
        count >= 2 ? self : [UInt8(ascii: "0")] + self
    }
}
