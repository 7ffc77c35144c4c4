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

extension UnsafeRawBufferPointer {
    /// The bytes as words, eight at a time in the machine's byte order, the last partial
    /// one padded with zeros (none when the count is a multiple of eight): what the word hashes
    /// (`SeriesMemo.defaultHash`, `SeriesFingerprint`) fold in.
    @inline(__always) func forEachWord(_ body: (UInt64) -> Void) {
        var offset = 0
        while offset + 8 <= count {
            body(loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            offset += 8
        }
        guard offset < count else { return }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while offset < count {
            tail |= UInt64(self[offset]) << shift
            shift += 8
            offset += 1
        }
        body(tail)
    }
}

extension UInt64 {
    /// Rotated left by `count` (1 to 63) bits.
    @inline(__always) func rotated(_ count: UInt64) -> UInt64 {
        (self << count) | (self >> (64 - count))
    }
}
