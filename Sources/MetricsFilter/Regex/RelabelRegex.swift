import CRE2

/// A relabel regex as Prometheus has it: Go's `regexp` syntax, anchored as the
/// semantics say (`^(?s:REGEX)$` for Prometheus 3, `^(?:REGEX)$` for 2), matched by
/// Google's RE2: linear in the subject's length, no backtracking, so no pattern from
/// a config can stall a scrape.
///
/// Matching cannot fail: once compiled, RE2 answers every match with yes or no (when
/// its DFA cache runs out it falls back to its NFA, slower, never wrong), so no input
/// can turn a `drop` into a keep. What can fail, a pattern too large for the memory
/// budget, fails at load time, with the rule's key in the message.
public final class RelabelRegex: Sendable {
    /// What Prometheus says of a regex it refuses: `error parsing regexp: CODE: `ARG``
    /// (Go's `regexp/syntax.Error`), or why the gateway cannot run it.
    public struct CompileError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }

        init(code: String, argument: String) {
            message = "error parsing regexp: \(code): `\(argument)`"
        }

        init(message: String) {
            self.message = message
        }
    }

    /// Prometheus's default: `(.*)`.
    public static let defaultPattern = "(.*)"

    /// What RE2 may use for one regex's program and DFA caches. RE2's own default
    /// (8 MiB): enough for every pattern but large counted repeats of wide Unicode
    /// classes (`\pL{500}`), which are refused at load time rather than run slowly.
    static let memoryBudget: Int64 = 8 << 20

    public let pattern: String
    public let semantics: RelabelSemantics
    /// Capture group names by number (nil for unnamed), index 0 for the whole match.
    let groupNames: [String?]
    // nonisolated(unsafe): RE2 objects are immutable once compiled and safe to match
    // from many threads at once; freed only in deinit.
    private nonisolated(unsafe) let compiled: OpaquePointer

    public init(_ pattern: String, semantics: RelabelSemantics = .prometheus3) throws(CompileError) {
        self.pattern = pattern
        self.semantics = semantics
        let anchored = semantics.anchored(pattern)
        let translation: GoRegexSyntax.Translation
        do {
            translation = try GoRegexSyntax.translate(Array(anchored.utf8))
        } catch {
            // Go reports the leftmost error: RE2's, if the text before the scan's
            // refusal has one of its own (other than the groups left open there).
            if case .failure(let earlier) = Self.compile(error.translatedPrefix, anchored: anchored),
               !earlier.message.hasPrefix("error parsing regexp: missing closing )") {
                throw earlier
            }
            throw error.error
        }
        let compiled = try Self.compile(translation.pattern, anchored: anchored).get()
        guard Int(scrapeguard_re2_group_count(compiled)) == translation.groupNames.count else {
            // The scan and RE2 disagree on the groups: refuse rather than expand the
            // wrong one.
            scrapeguard_re2_free(compiled)
            throw CompileError(code: "regexp/syntax: internal error", argument: anchored)
        }
        self.compiled = compiled
        self.groupNames = translation.groupNames
    }

    deinit {
        scrapeguard_re2_free(compiled)
    }

    /// Whether the regex matches `subject` (Go's `MatchString`).
    public func matches(_ subject: [UInt8]) -> Bool {
        subject.withUnsafeBufferPointer { matches($0) }
    }

    func matches(_ subject: UnsafeBufferPointer<UInt8>) -> Bool {
        guard GoUTF8.isValid(subject) else { return match(Array(subject)) != nil }
        return scrapeguard_re2_match(compiled, subject.baseAddress, subject.count, 0, nil, 0) == 1
    }

    /// The leftmost match at or after `start` (Go's `FindSubmatchIndex`): (start, end)
    /// of each group, -1 for a group that took no part; nil without a match.
    ///
    /// Go reads each byte that is not UTF-8 as U+FFFD, which `.` and `[^a]` match;
    /// RE2 would match nothing there, and a `drop` would keep. Values reach here
    /// checked (the parser refuses what is not UTF-8), but should one not be, it is
    /// matched as Go matches it: through a copy with those bytes replaced, the
    /// offsets mapped back to the value's own.
    func match(_ subject: [UInt8], from start: Int = 0) -> [Int]? {
        guard subject.withUnsafeBufferPointer(GoUTF8.isValid) else {
            let decoded = GoUTF8.replacingInvalidBytes(subject)
            let mappedStart = decoded.offsets.firstIndex { $0 >= start } ?? decoded.bytes.count
            return match(decoded.bytes, from: mappedStart)?.map { $0 < 0 ? $0 : decoded.offsets[$0] }
        }
        var ranges = [Int64](repeating: -1, count: 2 * groupNames.count)
        let found = subject.withUnsafeBufferPointer { buffer in
            ranges.withUnsafeMutableBufferPointer { output in
                scrapeguard_re2_match(compiled, buffer.baseAddress, buffer.count, start, output.baseAddress, Int32(groupNames.count))
            }
        }
        return found == 1 ? ranges.map { Int($0) } : nil
    }

    private static func compile(_ pattern: [UInt8], anchored: String) -> Result<OpaquePointer, CompileError> {
        var error = scrapeguard_re2_error()
        let compiled = pattern.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) {
                scrapeguard_re2_compile($0.baseAddress, $0.count, Self.memoryBudget, &error)
            }
        }
        guard let compiled else { return .failure(compileError(error, translated: pattern, anchored: anchored)) }
        return .success(compiled)
    }

    private static func compileError(_ error: scrapeguard_re2_error, translated: [UInt8], anchored: String) -> CompileError {
        var argument = withUnsafeBytes(of: error.argument) { raw in
            String(decoding: raw.prefix(error.argument_length), as: UTF8.self)
        }
        // RE2 names the whole pattern for a missing or unexpected `)`: name it as it
        // was written, named groups and all, as Go does.
        if argument.utf8.elementsEqual(translated) { argument = anchored }
        // RE2's error codes, in its numbering, as Go's `regexp/syntax` words them.
        let codes = [
            "regexp/syntax: internal error", "invalid escape sequence", "invalid character class",
            "invalid character class range", "missing closing ]", "missing closing )", "unexpected )",
            "trailing backslash at end of expression", "missing argument to repetition operator",
            "invalid repeat count", "invalid nested repetition operator", "invalid or unsupported Perl syntax",
            "invalid UTF-8", "invalid named capture",
        ]
        let code = Int(error.code)
        if code == codes.count + 1 {
            return CompileError(message: "regex too large: it needs more than the \(memoryBudget >> 20) MiB RE2 is given "
                + "for one regex (large counted repeats of Unicode classes are the usual cause): `\(anchored)`")
        }
        guard code >= 1, code <= codes.count else {
            return CompileError(code: codes[0], argument: anchored)
        }
        return CompileError(code: codes[code - 1], argument: argument)
    }
}

/// UTF-8 as Go's `unicode/utf8` decodes it: a byte that does not start a valid
/// sequence (overlong, surrogate, past U+10FFFF, cut short) is one U+FFFD.
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
        for offset in 2..<max(width, 2) where !(0x80...0xBF).contains(bytes[index + offset]) {
            return nil
        }
        return width
    }
}
