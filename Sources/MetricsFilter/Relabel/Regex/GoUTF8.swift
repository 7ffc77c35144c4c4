/// UTF-8 as Go's `unicode/utf8` decodes it: a byte that does not start a valid
/// sequence (overlong, surrogate, past U+10FFFF, cut short) is one U+FFFD. The
/// valid sequences are Unicode's, so `isValid` is the filter's one UTF-8 check
/// (`ExpositionTokens.isValidUTF8`).
enum GoUTF8 {
    static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        while index < bytes.count {
            if bytes[index] < 0x80 { index += 1; continue }
            guard let width = sequenceWidth(bytes, at: index) else { return false }
            index += width
        }
        return true
    }

    /// The bytes with each invalid one replaced by EF BF BD, and for every offset
    /// into them (and the end) the offset into the original it stands for.
    static func replacingInvalidBytes(_ bytes: [UInt8]) -> (bytes: [UInt8], offsets: [Int]) {
        var output: [UInt8] = []
        var offsets: [Int] = []
        bytes.withUnsafeBufferPointer { buffer in
            var index = 0
            while index < buffer.count {
                let width = buffer[index] < 0x80 ? 1 : sequenceWidth(buffer, at: index)
                if let width {
                    for position in index..<(index + width) {
                        output.append(buffer[position])
                        offsets.append(position)
                    }
                    index += width
                } else {
                    output.append(contentsOf: [0xEF, 0xBF, 0xBD])
                    offsets.append(contentsOf: [index, index, index])
                    index += 1
                }
            }
        }
        offsets.append(bytes.count)
        return (output, offsets)
    }

    /// The length of the valid multi-byte sequence at `index`, nil if there is none.
    private static func sequenceWidth(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Int? {
        let first = bytes[index]
        let width: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch first {
        case 0xC2...0xDF: width = 2
        case 0xE0: width = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: width = 3
        case 0xED: width = 3; high = 0x9F
        case 0xF0: width = 4; low = 0x90
        case 0xF1...0xF3: width = 4
        case 0xF4: width = 4; high = 0x8F
        default: return nil
        }
        guard index + width <= bytes.count else { return nil }
        guard bytes[index + 1] >= low, bytes[index + 1] <= high else { return nil }
        for offset in 2..<width where !(0x80...0xBF).contains(bytes[index + offset]) {
            return nil
        }
        return width
    }
}
