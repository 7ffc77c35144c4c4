import CPCRE2

/// A relabel regex: RE2 syntax, fully anchored as Prometheus 2.x anchors it
/// (`^(?:PATTERN)$`, `.` not matching a newline), compiled by PCRE2 with its JIT.
/// PCRE2 reads a superset of RE2, so what RE2 refuses (lookaround, backreferences,
/// possessive quantifiers, `\Z`, ...) is refused first, with Go's words.
public final class RelabelRegex: @unchecked Sendable {
    // @unchecked: the compiled code is immutable and PCRE2 allows matching it from
    // many threads at once; each match uses its own match data.

    public struct CompileError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public let pattern: String
    private let code: OpaquePointer
    /// Capture group names by number (nil for unnamed), index 0 for the whole match.
    let groupNames: [String?]

    /// Prometheus's default: `(.*)`.
    public static let defaultPattern = "(.*)"

    public init(_ pattern: String) throws(CompileError) {
        self.pattern = pattern
        let anchored = "^(?:\(pattern))$"
        try RE2Syntax.check(pattern, anchored: anchored)
        var errorCode: Int32 = 0
        var errorOffset = 0
        let options = UInt32(PCRE2_UTF) | UInt32(PCRE2_DOLLAR_ENDONLY) | UInt32(PCRE2_NO_UTF_CHECK)
        guard let code = anchored.withCString({ pointer in
            pointer.withMemoryRebound(to: UInt8.self, capacity: anchored.utf8.count) {
                pcre2_compile_8($0, anchored.utf8.count, options, &errorCode, &errorOffset, nil)
            }
        }) else {
            var buffer = [UInt8](repeating: 0, count: 256)
            _ = pcre2_get_error_message_8(errorCode, &buffer, buffer.count)
            let message = String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)
            throw CompileError(message: "error parsing regexp: \(message): `\(anchored)`")
        }
        _ = pcre2_jit_compile_8(code, UInt32(PCRE2_JIT_COMPLETE))
        self.code = code
        self.groupNames = Self.readGroupNames(code)
    }

    deinit {
        pcre2_code_free_8(code)
    }

    /// Match data sized for this regex; reuse it for many matches on one thread.
    func makeMatchData() -> MatchData {
        MatchData(pcre2_match_data_create_from_pattern_8(code, nil))
    }

    /// Whether `subject` matches as a whole.
    func matches(_ subject: [UInt8], using data: MatchData) -> Bool {
        match(subject, using: data) != nil
    }

    /// The capture ranges (start, end) of a whole match, -1 for a group that did not
    /// take part; nil without a match.
    func match(_ subject: [UInt8], using data: MatchData) -> [Int]? {
        let result = subject.withUnsafeBufferPointer { buffer in
            pcre2_match_8(code, buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!, buffer.count, 0,
                          UInt32(PCRE2_NO_UTF_CHECK), data.pointer, nil)
        }
        guard result >= 0 else { return nil }
        let count = Int(pcre2_get_ovector_count_8(data.pointer))
        let vector = pcre2_get_ovector_pointer_8(data.pointer)!
        var ranges = [Int](repeating: -1, count: groupNames.count * 2)
        for index in 0..<min(count, groupNames.count) {
            let start = vector[2 * index]
            let end = vector[2 * index + 1]
            if start != PCRE2_UNSET_VALUE && index < Int(result) {
                ranges[2 * index] = Int(start)
                ranges[2 * index + 1] = Int(end)
            }
        }
        return ranges
    }

    /// Go's `Regexp.Expand`: `$1`, `${1}`, `$name`, `${name}`, `$$`; a `$name` takes
    /// every letter, digit and underscore after it; an unknown or unmatched group is
    /// empty; a malformed `$` is kept as it is.
    func expand(_ template: [UInt8], subject: [UInt8], match: [Int]) -> [UInt8] {
        var output: [UInt8] = []
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
            if let group = groupIndex(name), 2 * group + 1 < match.count, match[2 * group] >= 0 {
                output.append(contentsOf: subject[match[2 * group]..<match[2 * group + 1]])
            }
        }
        return output
    }

    private func groupIndex(_ name: [UInt8]) -> Int? {
        var number = 0
        var isNumber = true
        for byte in name {
            guard byte >= 0x30 && byte <= 0x39, number < 100_000_000 else { isNumber = false; break }
            number = number * 10 + Int(byte - 0x30)
        }
        if name.count > 1 && name.first == UInt8(ascii: "0") { isNumber = false }
        if isNumber { return number }
        let text = String(decoding: name, as: UTF8.self)
        return groupNames.firstIndex { $0 == text }
    }

    /// After a `$`: `{name}` or a run of letters, digits and `_`; nil when malformed.
    private static func extractGroupName(_ template: [UInt8], from start: Int) -> ([UInt8], Int)? {
        var index = start
        let braced = index < template.count && template[index] == UInt8(ascii: "{")
        if braced { index += 1 }
        let nameStart = index
        while index < template.count {
            let (scalar, length) = decodeScalar(template, at: index)
            guard let scalar, scalar == "_" || scalar.properties.isAlphabetic || scalar.properties.numericType == .decimal else { break }
            index += length
        }
        guard index > nameStart else { return nil }
        let name = Array(template[nameStart..<index])
        if braced {
            guard index < template.count, template[index] == UInt8(ascii: "}") else { return nil }
            index += 1
        }
        return (name, index)
    }

    private static func decodeScalar(_ bytes: [UInt8], at index: Int) -> (Unicode.Scalar?, Int) {
        var iterator = bytes[index...].makeIterator()
        var decoder = UTF8()
        switch decoder.decode(&iterator) {
        case .scalarValue(let scalar): return (scalar, UTF8.width(scalar))
        default: return (nil, 1)
        }
    }

    private static func readGroupNames(_ code: OpaquePointer) -> [String?] {
        var captureCount: UInt32 = 0
        pcre2_pattern_info_8(code, UInt32(PCRE2_INFO_CAPTURECOUNT), &captureCount)
        var names = [String?](repeating: nil, count: Int(captureCount) + 1)
        var nameCount: UInt32 = 0
        var entrySize: UInt32 = 0
        var table: UnsafePointer<UInt8>?
        pcre2_pattern_info_8(code, UInt32(PCRE2_INFO_NAMECOUNT), &nameCount)
        pcre2_pattern_info_8(code, UInt32(PCRE2_INFO_NAMEENTRYSIZE), &entrySize)
        pcre2_pattern_info_8(code, UInt32(PCRE2_INFO_NAMETABLE), &table)
        if let table {
            for entry in 0..<Int(nameCount) {
                let base = table + entry * Int(entrySize)
                let number = Int(base[0]) << 8 | Int(base[1])
                let name = String(cString: UnsafeRawPointer(base + 2).assumingMemoryBound(to: CChar.self))
                // The wrapper adds no group, so numbers are the pattern's own.
                if number < names.count { names[number] = name }
            }
        }
        return names
    }
}

/// PCRE2 match data, freed with its owner.
final class MatchData {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer?) {
        self.pointer = pointer!
    }

    deinit {
        pcre2_match_data_free_8(pointer)
    }
}

private let PCRE2_UNSET_VALUE = ~Int(0)

/// What RE2 (Go's regexp) refuses but PCRE2 would accept.
enum RE2Syntax {
    private static let refusedEscapes = Set("123456789ZGKgkRXhHN".utf8)
    private static let refusedGroups = ["=", "!", "<=", "<!", ">", "R", "(", "|", "&", "+", "C",
                                        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]

    static func check(_ pattern: String, anchored: String) throws(RelabelRegex.CompileError) {
        let bytes = Array(pattern.utf8)
        var index = 0
        var inClass = false
        /// 0: the last token was no quantifier; 1: a quantifier; 2: a lazy one (`*?`).
        var quantified = 0
        func fail(_ what: String) -> RelabelRegex.CompileError {
            RelabelRegex.CompileError(message: "error parsing regexp: \(what)")
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\"), index + 1 < bytes.count {
                let next = bytes[index + 1]
                if refusedEscapes.contains(next) {
                    throw fail("invalid escape sequence: `\\\(Character(Unicode.Scalar(next)))`")
                }
                index += 2
                // `\p{Greek}`, `\x{263a}`: the braces belong to the escape.
                if [UInt8(ascii: "p"), UInt8(ascii: "P"), UInt8(ascii: "x")].contains(next),
                    index < bytes.count, bytes[index] == UInt8(ascii: "{") {
                    while index < bytes.count, bytes[index] != UInt8(ascii: "}") { index += 1 }
                    index += 1
                }
                quantified = 0
                continue
            }
            if inClass {
                if byte == UInt8(ascii: "]") { inClass = false }
                index += 1
                continue
            }
            switch byte {
            case UInt8(ascii: "["):
                inClass = true
                index += 1
                // `[]...]` and `[^]...]` start with a literal ].
                if index < bytes.count, bytes[index] == UInt8(ascii: "^") { index += 1 }
                if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1 }
                quantified = 0
                continue
            case UInt8(ascii: "("):
                if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "?") {
                    let rest = bytes[(index + 2)...]
                    for refused in refusedGroups where rest.starts(with: refused.utf8) {
                        throw fail("invalid or unsupported Perl syntax: `(?\(refused)`")
                    }
                }
                quantified = 0
            case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"), UInt8(ascii: "}"):
                if quantified == 1 && byte == UInt8(ascii: "?") {
                    quantified = 2
                } else if quantified != 0 {
                    let previous = Character(Unicode.Scalar(bytes[index - 1]))
                    throw fail("invalid nested repetition operator: `\(previous)\(Character(Unicode.Scalar(byte)))`")
                } else {
                    quantified = 1
                }
            default:
                quantified = 0
            }
            index += 1
        }
    }
}
