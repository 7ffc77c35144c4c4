/// Bytes as a dictionary or set key, hashed in one call over the whole buffer.
///
/// `[UInt8]`'s own `Hashable` feeds the hasher one byte at a time, which made
/// hashing the largest single cost of the filter's per-label lookups.
struct ByteKey: Hashable, Sendable {
    var bytes: [UInt8]

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    init<Bytes: Sequence>(copying bytes: Bytes) where Bytes.Element == UInt8 {
        self.bytes = Array(bytes)
    }

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    static func == (lhs: ByteKey, rhs: ByteKey) -> Bool {
        lhs.bytes == rhs.bytes
    }
}

extension ByteKey {
    /// 64-bit FNV-1a of some bytes: a cheap hash for memo tables keyed by bytes read in
    /// place, whose entries keep the bytes to compare.
    static func fnv1a(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash
    }
}
