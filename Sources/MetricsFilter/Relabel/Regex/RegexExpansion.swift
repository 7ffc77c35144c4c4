/// Go's `Regexp.Expand` and `ReplaceAllString`, which Prometheus's `replace` and
/// `labelmap` actions use, to the byte.
extension RelabelRegex {
    /// `Expand`: `$1`, `${1}`, `$name`, `${name}`, `$$`. A `$name` takes every letter,
    /// digit and underscore after it (Unicode letters and decimal digits, as Go's
    /// `unicode.IsLetter`/`IsDigit`); an unknown group or one that took no part is
    /// empty; a name used twice means the first such group that took part; a
    /// malformed `$` is kept as it is.
    func expand(_ template: [UInt8], subject: [UInt8], match: [Int]) -> [UInt8] {
        var output: [UInt8] = []
        subject.withUnsafeBufferPointer { expand(template, subject: $0, match: match, into: &output) }
        return output
    }

    /// The same, appended to `output`, for a subject read in place.
    func expand(_ template: [UInt8], subject: UnsafeBufferPointer<UInt8>, match: [Int], into output: inout [UInt8]) {
        template.withUnsafeBufferPointer { template in
            var index = 0
            while index < template.count {
                let byte = template[index]
                guard byte == UInt8(ascii: "$") else {
                    output.append(byte)
                    index += 1
                    continue
                }
                index += 1
                if index < template.count, template[index] == UInt8(ascii: "$") {
                    output.append(UInt8(ascii: "$"))
                    index += 1
                    continue
                }
                guard let (name, next) = Self.extractGroupName(template, from: index) else {
                    output.append(UInt8(ascii: "$"))
                    continue
                }
                index = next
                if let group = groupIndex(UnsafeBufferPointer(rebasing: template[name]), match: match) {
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: subject[match[2 * group]..<match[2 * group + 1]]))
                }
            }
        }
    }

    /// `ReplaceAllString`: every match, left to right, replaced by the template's
    /// expansion. Anchored as Prometheus anchors it, a regex matches once, the whole
    /// name; a regex that splits the anchors (`a)|(b`) may match several times.
    func replaceAll(_ subject: [UInt8], with template: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        subject.withUnsafeBufferPointer { replaceAll($0, with: template, into: &output) }
        return output
    }

    /// The same, appended to `output`, for a subject read in place.
    func replaceAll(_ subject: UnsafeBufferPointer<UInt8>, with template: [UInt8], into output: inout [UInt8]) {
        var lastMatchEnd = 0
        var searchPosition = 0
        while searchPosition <= subject.count, let found = match(subject, from: searchPosition) {
            output.append(contentsOf: UnsafeBufferPointer(rebasing: subject[lastMatchEnd..<found[0]]))
            // No replacement for an empty match right after another match.
            if found[1] > lastMatchEnd || found[0] == 0 {
                expand(template, subject: subject, match: found, into: &output)
            }
            lastMatchEnd = found[1]
            // Advance past the match, and always by at least one character.
            let width = searchPosition < subject.count ? Self.decodeScalar(subject, at: searchPosition).1 : 0
            if searchPosition + width > found[1] {
                searchPosition += width
            } else if searchPosition + 1 > found[1] {
                searchPosition += 1
            } else {
                searchPosition = found[1]
            }
        }
        output.append(contentsOf: UnsafeBufferPointer(rebasing: subject[lastMatchEnd...]))
    }

    /// The group a reference means, if it took part in the match.
    private func groupIndex(_ name: UnsafeBufferPointer<UInt8>, match: [Int]) -> Int? {
        if let number = Self.groupNumber(name) {
            return 2 * number + 1 < match.count && match[2 * number] >= 0 ? number : nil
        }
        let text = String(decoding: name, as: UTF8.self)
        for (group, groupName) in groupNames.enumerated() where groupName == text && match[2 * group] >= 0 {
            return group
        }
        return nil
    }

    /// A decimal group number, without leading zeros and below 10^8 (Go's `extract`).
    private static func groupNumber(_ name: UnsafeBufferPointer<UInt8>) -> Int? {
        var number = 0
        for byte in name {
            guard byte >= 0x30 && byte <= 0x39, number < 100_000_000 else { return nil }
            number = number * 10 + Int(byte - 0x30)
        }
        if name.count > 1 && name.first == UInt8(ascii: "0") { return nil }
        return number
    }

    /// After a `$`: `{name}` or a run of letters, digits and `_`: where the name is and
    /// where the reference ends; nil when malformed.
    private static func extractGroupName(_ template: UnsafeBufferPointer<UInt8>, from start: Int) -> (Range<Int>, Int)? {
        var index = start
        let braced = index < template.count && template[index] == UInt8(ascii: "{")
        if braced { index += 1 }
        let nameStart = index
        while index < template.count {
            let (scalar, length) = decodeScalar(template, at: index)
            guard let scalar, scalar == "_" || isLetterOrDigit(scalar) else { break }
            index += length
        }
        guard index > nameStart else { return nil }
        let name = nameStart..<index
        if braced {
            guard index < template.count, template[index] == UInt8(ascii: "}") else { return nil }
            index += 1
        }
        return (name, index)
    }

    /// Go's `unicode.IsLetter` (category L) or `unicode.IsDigit` (category Nd).
    private static func isLetterOrDigit(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII {
            // The only ASCII letters and decimal digits; asked first, as most names are ASCII.
            let lowered = scalar.value | 0x20
            return (scalar.value >= 0x30 && scalar.value <= 0x39) || (lowered >= 0x61 && lowered <= 0x7A)
        }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter, .decimalNumber:
            return true
        default:
            return false
        }
    }

    private static func decodeScalar(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> (Unicode.Scalar?, Int) {
        if bytes[index] < 0x80 { return (Unicode.Scalar(bytes[index]), 1) }
        var iterator = bytes[index...].makeIterator()
        var decoder = UTF8()
        switch decoder.decode(&iterator) {
        case .scalarValue(let scalar): return (scalar, UTF8.width(scalar))
        default: return (nil, 1)
        }
    }
}
