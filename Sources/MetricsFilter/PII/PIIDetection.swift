#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds personal data in label values, on bytes. Each detector answers whether a
/// value contains what it looks for anywhere in it.
enum PIIDetection {
    static func contains(_ detector: PIIDetector, in value: [UInt8]) -> Bool {
        value.withUnsafeBufferPointer { contains(detector, in: $0) }
    }

    static func contains(_ detector: PIIDetector, in value: UnsafeBufferPointer<UInt8>) -> Bool {
        switch detector {
        case .email: return containsEmail(value)
        case .ipv4: return containsIPv4(value)
        case .ipv6: return containsIPv6(value)
        case .card: return containsCardNumber(value)
        case .bearer: return containsBearerToken(value)
        case .jwt: return containsJWT(value)
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
    private static func isAlpha(_ byte: UInt8) -> Bool { (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A }
    private static func isAlphanumeric(_ byte: UInt8) -> Bool { isDigit(byte) || isAlpha(byte) }
    private static func isHex(_ byte: UInt8) -> Bool { isDigit(byte) || ((byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x66) }

    /// `local@domain.tld`: a local part of letters, digits and `._%+-`, a domain of
    /// dot-separated labels ending in a top-level domain of two or more letters.
    static func containsEmail(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = value.baseAddress else { return false }
        var searchFrom = 0
        // memchr finds each `@`: most values have none, and it scans them a word at a time.
        while searchFrom < value.count, let found = memchr(base + searchFrom, Int32(UInt8(ascii: "@")), value.count - searchFrom) {
            let at = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
            searchFrom = at + 1
            var start = at
            while start > 0, isAlphanumeric(value[start - 1]) || "._%+-".utf8.contains(value[start - 1]) { start -= 1 }
            guard start < at else { continue }
            var end = at + 1
            while end < value.count, isAlphanumeric(value[end]) || value[end] == UInt8(ascii: ".") || value[end] == UInt8(ascii: "-") {
                end += 1
            }
            let domain = value[(at + 1)..<end]
            guard let lastDot = domain.lastIndex(of: UInt8(ascii: ".")), lastDot > at + 1 else { continue }
            let tld = domain[(lastDot + 1)...]
            if tld.count >= 2 && tld.allSatisfy(isAlpha) { return true }
        }
        return false
    }

    /// Four dot-separated decimal octets, 0–255, not part of a longer dotted number.
    static func containsIPv4(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        while index < value.count {
            guard isDigit(value[index]), index == 0 || !(isDigit(value[index - 1]) || value[index - 1] == UInt8(ascii: ".")) else {
                index += 1
                continue
            }
            var cursor = index
            var octets = 0
            var valid = true
            while octets < 4 {
                let start = cursor
                var number = 0
                while cursor < value.count, isDigit(value[cursor]), cursor - start < 3 {
                    number = number * 10 + Int(value[cursor] - 0x30)
                    cursor += 1
                }
                guard cursor > start, number <= 255, cursor >= value.count || !isDigit(value[cursor]) else { valid = false; break }
                octets += 1
                if octets < 4 {
                    guard cursor < value.count, value[cursor] == UInt8(ascii: ".") else { valid = false; break }
                    cursor += 1
                }
            }
            if valid && octets == 4 && (cursor >= value.count || !(value[cursor] == UInt8(ascii: ".") && cursor + 1 < value.count && isDigit(value[cursor + 1]))) {
                return true
            }
            index += 1
        }
        return false
    }

    /// A run of hex digits, colons (two or more) and dots that `inet_pton` reads as IPv6.
    static func containsIPv6(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        while index < value.count {
            guard isHex(value[index]) || value[index] == UInt8(ascii: ":") else {
                index += 1
                continue
            }
            var end = index
            var colons = 0
            while end < value.count, isHex(value[end]) || value[end] == UInt8(ascii: ":") || value[end] == UInt8(ascii: ".") {
                if value[end] == UInt8(ascii: ":") { colons += 1 }
                end += 1
            }
            if colons >= 2 && end - index <= 45 {
                var candidate = Array(value[index..<end])
                candidate.append(0)
                var address = in6_addr()
                let parsed = candidate.withUnsafeBufferPointer { pointer in
                    pointer.withMemoryRebound(to: CChar.self) { inet_pton(AF_INET6, $0.baseAddress, &address) }
                }
                if parsed == 1 { return true }
            }
            index = end + 1
        }
        return false
    }

    /// 13–19 digits, optionally grouped by spaces or dashes, passing the Luhn check.
    static func containsCardNumber(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        while index < value.count {
            guard isDigit(value[index]), index == 0 || !isDigit(value[index - 1]) else {
                index += 1
                continue
            }
            var digits: [UInt8] = []
            var cursor = index
            while cursor < value.count {
                if isDigit(value[cursor]) {
                    digits.append(value[cursor] - 0x30)
                } else if (value[cursor] == UInt8(ascii: " ") || value[cursor] == UInt8(ascii: "-")),
                    cursor + 1 < value.count, isDigit(value[cursor + 1]) {
                    // a group separator
                } else {
                    break
                }
                cursor += 1
                if digits.count > 19 { break }
            }
            if (13...19).contains(digits.count) && luhn(digits) { return true }
            index = cursor + 1
        }
        return false
    }

    static func luhn(_ digits: [UInt8]) -> Bool {
        var sum = 0
        for (position, digit) in digits.reversed().enumerated() {
            var value = Int(digit)
            if position % 2 == 1 {
                value *= 2
                if value > 9 { value -= 9 }
            }
            sum += value
        }
        return sum % 10 == 0
    }

    /// `bearer` (any case), blanks, and a token of eight or more token characters.
    static func containsBearerToken(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        let word = Array("bearer".utf8)
        guard value.count > word.count else { return false }
        for start in 0...(value.count - word.count) {
            guard zip(value[start..<(start + word.count)], word).allSatisfy({ $0 | 0x20 == $1 }) else { continue }
            var cursor = start + word.count
            let blanks = cursor
            while cursor < value.count, value[cursor] == UInt8(ascii: " ") || value[cursor] == UInt8(ascii: "\t") { cursor += 1 }
            guard cursor > blanks else { continue }
            var length = 0
            while cursor < value.count, isAlphanumeric(value[cursor]) || "-._~+/=".utf8.contains(value[cursor]) {
                cursor += 1
                length += 1
            }
            if length >= 8 { return true }
        }
        return false
    }

    /// `eyJ` + base64url, `.`, base64url, `.`, base64url (the signature may be empty).
    static func containsJWT(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        func isBase64URL(_ byte: UInt8) -> Bool { isAlphanumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") }
        let prefix = Array("eyJ".utf8)
        guard value.count >= 10 else { return false }
        for start in 0...(value.count - prefix.count) where value[start..<(start + 3)].elementsEqual(prefix) {
            var cursor = start
            var parts = [0, 0, 0]
            for part in 0..<3 {
                while cursor < value.count, isBase64URL(value[cursor]) {
                    parts[part] += 1
                    cursor += 1
                }
                if part < 2 {
                    guard cursor < value.count, value[cursor] == UInt8(ascii: ".") else { parts[part] = -1; break }
                    cursor += 1
                }
            }
            if parts[0] >= 4 && parts[1] >= 2 && parts[2] >= 0 && !parts.contains(-1) { return true }
        }
        return false
    }
}
