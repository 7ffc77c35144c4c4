internal import CRE2

/// A relabel regex as Prometheus has it: Go's `regexp` syntax, anchored as the
/// semantics say (`^(?s:REGEX)$` for Prometheus 3, `^(?:REGEX)$` for 2), matched by
/// Google's RE2: linear in the subject's length, no backtracking, so no pattern from
/// a config can stall a scrape.
///
/// Matching cannot fail: once compiled, RE2 answers every match with yes or no (when
/// a DFA cache runs out, or a part it builds lazily does not fit, it falls back to its
/// NFA: slower, never wrong), so no input can turn a `drop` into a keep. A pattern
/// too large for the memory budget is refused at load time, with the rule's key in
/// the message. Only an allocation failure inside RE2 is left, and it ends the
/// process, as any failed allocation in Swift does: it never becomes a verdict.
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
    /// The pattern has a `\B`, which RE2 (searching byte by byte) can find inside a
    /// multi-byte character, where Go (character by character) never looks.
    private let mayMatchInsideCharacters: Bool
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
            switch Self.compile(error.translatedPrefix, anchored: anchored) {
            case .success(let prefix):
                scrapeguard_re2_free(prefix)
            case .failure(let earlier):
                if !earlier.message.hasPrefix("error parsing regexp: missing closing )") { throw earlier }
            }
            throw error.error
        }
        let compiled = try Self.compile(translation.pattern, anchored: anchored).get()
        if translation.nestsTooDeeply {
            // Go's tree height check, which fires once the whole pattern parsed.
            scrapeguard_re2_free(compiled)
            throw CompileError(code: "expression nests too deeply", argument: anchored)
        }
        guard Int(scrapeguard_re2_group_count(compiled)) == translation.groupNames.count else {
            // The scan and RE2 disagree on the groups: refuse rather than expand the
            // wrong one.
            scrapeguard_re2_free(compiled)
            throw CompileError(code: "regexp/syntax: internal error", argument: anchored)
        }
        self.compiled = compiled
        self.groupNames = translation.groupNames
        self.mayMatchInsideCharacters = translation.hasNonWordBoundary
    }

    deinit {
        scrapeguard_re2_free(compiled)
    }

    /// Whether the regex matches `subject` (Go's `MatchString`).
    public func matches(_ subject: [UInt8]) -> Bool {
        subject.withUnsafeBufferPointer { matches($0) }
    }

    /// The same for bytes read in place.
    func matches(_ subject: UnsafeBufferPointer<UInt8>) -> Bool {
        guard GoUTF8.isValid(subject), !(mayMatchInsideCharacters && !Self.isASCII(subject)) else {
            return match(subject) != nil
        }
        return Self.succeeded(scrapeguard_re2_match(compiled, subject.baseAddress, subject.count, 0, nil, 0))
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
        subject.withUnsafeBufferPointer { match($0, from: start) }
    }

    /// The same for bytes read in place.
    func match(_ subject: UnsafeBufferPointer<UInt8>, from start: Int = 0) -> [Int]? {
        guard GoUTF8.isValid(subject) else {
            let decoded = GoUTF8.replacingInvalidBytes(Array(subject))
            let mappedStart = decoded.offsets.firstIndex { $0 >= start } ?? decoded.bytes.count
            return match(decoded.bytes, from: mappedStart)?.map { $0 < 0 ? $0 : decoded.offsets[$0] }
        }
        var searchStart = start
        while true {
            var ranges = [Int](repeating: -1, count: 2 * groupNames.count)
            let found = ranges.withUnsafeMutableBufferPointer { output in
                scrapeguard_re2_match(compiled, subject.baseAddress, subject.count, searchStart, output.baseAddress,
                                      Int32(groupNames.count))
            }
            guard Self.succeeded(found) else { return nil }
            let matchStart = ranges[0]
            // Only an empty `\B` match can start inside a character; Go would look
            // on from the character's end.
            guard matchStart < subject.count, subject[matchStart] & 0xC0 == 0x80 else { return ranges }
            searchStart = matchStart + 1
            while searchStart < subject.count, subject[searchStart] & 0xC0 == 0x80 { searchStart += 1 }
        }
    }

    /// RE2's answer: 1 a match, 0 none; -1, an allocation failed inside it.
    private static func succeeded(_ result: Int32) -> Bool {
        // safe: no input reaches this. RE2 answers every match (its DFA falls back to
        // its NFA); only a failed allocation gives -1, which ends the process as any
        // failed allocation in Swift does, rather than becoming a verdict.
        guard result >= 0 else { fatalError("RE2 could not allocate memory for a match") }  // safe: see above
        return result == 1
    }

    private static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.allSatisfy { $0 < 0x80 }
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
        if error.argument_full_length == translated.count && translated.starts(with: argument.utf8) {
            argument = anchored
        }
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

extension RelabelRegex: Equatable {
    /// The same pattern under the same semantics compiles to the same program.
    public static func == (lhs: RelabelRegex, rhs: RelabelRegex) -> Bool {
        lhs === rhs || (lhs.pattern == rhs.pattern && lhs.semantics == rhs.semantics)
    }
}
