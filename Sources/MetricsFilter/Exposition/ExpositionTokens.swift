#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The exposition formats' tokens and character classes, on raw bytes.
enum ExpositionTokens {
    /// Byte-for-byte equality, without the generic sequence comparison's per-byte
    /// iteration (names are compared per label on the fast path).
    static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ other: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.count == other.count && (bytes.isEmpty || memcmp(bytes.baseAddress!, other.baseAddress!, bytes.count) == 0)
    }

    /// Byte-wise order (a prefix first), as `lexicographicallyPrecedes` gives it, by `memcmp`.
    static func precedes(_ bytes: UnsafeBufferPointer<UInt8>, _ other: UnsafeBufferPointer<UInt8>) -> Bool {
        let common = min(bytes.count, other.count)
        if common > 0 {
            let order = memcmp(bytes.baseAddress!, other.baseAddress!, common)
            if order != 0 { return order < 0 }
        }
        return bytes.count < other.count
    }

    static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        equal(bytes, UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    static func isLabelNameByte(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || isDigit(byte) || byte == UInt8(ascii: "_")
    }

    static func isMetricNameByte(_ byte: UInt8) -> Bool {
        isLabelNameByte(byte) || byte == UInt8(ascii: ":")
    }

    /// Go's float syntax as Prometheus accepts it (no hex, no underscores), or the
    /// OpenMetrics number; `Inf`, `Infinity` and `NaN` in any case, with a sign for Inf.
    static func isNumber(_ token: [UInt8], strict: Bool) -> Bool {
        token.withUnsafeBufferPointer { isNumber($0, strict: strict) }
    }

    static func isNumber(_ token: UnsafeBufferPointer<UInt8>, strict: Bool) -> Bool {
        guard let first = token.first else { return false }
        let signed = first == UInt8(ascii: "+") || first == UInt8(ascii: "-")
        let body = UnsafeBufferPointer(rebasing: token[(signed ? 1 : 0)...])
        if let letter = body.first, letter | 0x20 == UInt8(ascii: "i") || letter | 0x20 == UInt8(ascii: "n") {
            if ExpositionParser.equalsIgnoringCase(body, "inf") || ExpositionParser.equalsIgnoringCase(body, "infinity") { return true }
            return !signed && ExpositionParser.equalsIgnoringCase(body, "nan")
        }
        return isRealNumber(body)
    }

    static func isRealNumber(_ body: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        let end = body.count
        var digits = 0
        while index < end, isDigit(body[index]) { index += 1; digits += 1 }
        if index < end, body[index] == UInt8(ascii: ".") {
            index += 1
            while index < end, isDigit(body[index]) { index += 1; digits += 1 }
        }
        guard digits > 0 else { return false }
        if index < end, body[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < end, body[index] == UInt8(ascii: "+") || body[index] == UInt8(ascii: "-") { index += 1 }
            let start = index
            while index < end, isDigit(body[index]) { index += 1 }
            guard index > start else { return false }
        }
        return index == end
    }

    /// Text format: int64 milliseconds. OpenMetrics: a real number of seconds.
    static func isTimestamp(_ token: [UInt8], strict: Bool) -> Bool {
        token.withUnsafeBufferPointer { isTimestamp($0, strict: strict) }
    }

    static func isTimestamp(_ token: UnsafeBufferPointer<UInt8>, strict: Bool) -> Bool {
        let signed = token.first == UInt8(ascii: "+") || token.first == UInt8(ascii: "-")
        let body = UnsafeBufferPointer(rebasing: token[(signed ? 1 : 0)...])
        if strict { return isRealNumber(body) }
        return !body.isEmpty && body.count <= 19 && body.allSatisfy(isDigit)
    }

    static func runeCount(_ bytes: [UInt8]) -> Int {
        bytes.reduce(0) { $0 + (($1 & 0xC0) != 0x80 ? 1 : 0) }
    }

    static func isValidUTF8(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer(GoUTF8.isValid)
    }
}
