/// Where Go's `regexp/syntax` (what Prometheus compiles relabel regexes with) and
/// RE2 C++ (what matches them here) read a pattern differently, settled Go's way
/// before RE2 sees it. Everything else, RE2 parses as Go does: Go's package is a port
/// of RE2's parser, with the same Perl flags (`syntax.Perl`: ClassNL, OneLine,
/// PerlX, UnicodeGroups), limits (repeat counts up to 1000) and escapes.
///
/// The differences (each pinned by RelabelRegexTests; RelabelOracleTests holds the
/// whole against Go on generated patterns):
/// - `\C` (any byte): RE2 accepts it; Go refuses it ("invalid escape sequence").
/// - Named groups: Go accepts a name used twice (`(?P<n>a)|(?P<n>b)`) and, since Go
///   1.22 (Prometheus 2.53+ and 3 are built with 1.22+), `(?<name>…)` as well as
///   `(?P<name>…)`; this RE2 (2022-06) refuses both. So named groups reach RE2 as
///   plain groups, and the names are kept here, by group number, for `$name`.
/// - Flag groups: Go names the offending character in its message (`(?i{`).
/// - Repeat counts of 10^8 and more: RE2 reads `a{1000000000}` as literal text; Go
///   refuses it ("invalid repeat count"), as it refuses any count over 1000.
/// - Nesting: Go refuses a parse tree higher than 1000 ("expression nests too
///   deeply"); RE2 has no such limit. Counted here: captures one inside the other,
///   each a level of Go's tree, with one more for the content and one for the
///   anchors' concatenation; refused when that alone passes 1000, at the point Go
///   finds it. Deeper trees that Go builds from other nodes (repeats, alternations)
///   are not counted: such a pattern is accepted here.
///
/// Left as they are, because RE2 is the stricter: RE2 refuses a pattern whose
/// program exceeds its memory budget (`RelabelRegex.memoryBudget`), far below Go's
/// "expression too large"; and it counts a `{0}` repeat into the 1000-copies limit
/// of nested repeats (`((a{1000}){0}){2}`), where Go stops at `{0}`.
///
/// The scan runs over the anchored pattern, as Go parses it, so that a `\Q` that
/// swallows the wrapper's `)$` or a `)` that closes it early reads as it does there.
enum GoRegexSyntax {
    struct Translation {
        /// The pattern for RE2: the input with each named group opened as `(`.
        var pattern: [UInt8]
        /// Group names by number (nil for unnamed); index 0 is the whole match.
        var groupNames: [String?]
        /// Go would refuse the whole, once parsed, as nested too deeply.
        var nestsTooDeeply: Bool
        /// The pattern has a `\B` (see `RelabelRegex.match`).
        var hasNonWordBoundary: Bool
    }

    /// A refusal found by the scan, and where: the translated pattern up to the
    /// offending construct, for RE2 to say whether something before it is wrong
    /// first (Go reports the leftmost error).
    struct Refusal: Error {
        var error: RelabelRegex.CompileError
        var translatedPrefix: [UInt8]
    }

    static func translate(_ pattern: [UInt8]) throws(Refusal) -> Translation {
        var scanner = Scanner(bytes: pattern)
        do {
            try scanner.run()
        } catch {
            throw Refusal(error: error, translatedPrefix: scanner.output)
        }
        return Translation(pattern: scanner.output, groupNames: scanner.groupNames,
                           nestsTooDeeply: scanner.deepestCaptureChain >= Scanner.captureChainLimit - 1,
                           hasNonWordBoundary: scanner.hasNonWordBoundary)
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        var output: [UInt8] = []
        var groupNames: [String?] = [nil]
        var hasNonWordBoundary = false
        /// Open groups, innermost last: whether each captures, and the longest chain
        /// of captures nested in it so far.
        private var openGroups: [(capture: Bool, chainInside: Int)] = []
        /// The longest chain of nested captures among the closed top-level groups.
        private(set) var deepestCaptureChain = 0
        /// A capture holding a chain this long has a Go tree height over 1000
        /// (`maxHeight`): one level per capture, one for the content below.
        static let captureChainLimit = 1000

        init(bytes: [UInt8]) {
            self.bytes = bytes
            output.reserveCapacity(bytes.count)
        }

        private func byte(at offset: Int) -> UInt8? {
            offset < bytes.count ? bytes[offset] : nil
        }

        private mutating func copy(upTo end: Int) {
            let end = min(end, bytes.count)
            if index < end { output.append(contentsOf: bytes[index..<end]) }
            index = end
        }

        mutating func run() throws(RelabelRegex.CompileError) {
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\\"):
                    try escape()
                case UInt8(ascii: "["):
                    characterClass()
                case UInt8(ascii: "("):
                    try group()
                case UInt8(ascii: "{"):
                    try countedRepeat()
                case UInt8(ascii: ")"):
                    try closeGroup()
                    copy(upTo: index + 1)
                default:
                    copy(upTo: index + 1)
                }
            }
        }

        /// An escape outside a class: `\Q…\E` is copied whole (its text is literal),
        /// `\C` is refused, `\p{…}` and `\x{…}` keep their braces.
        private mutating func escape() throws(RelabelRegex.CompileError) {
            guard let next = byte(at: index + 1) else {
                copy(upTo: index + 1)  // RE2 reports the trailing backslash, as Go does
                return
            }
            switch next {
            case UInt8(ascii: "Q"):
                var end = index + 2
                while end < bytes.count, !(bytes[end] == UInt8(ascii: "\\") && byte(at: end + 1) == UInt8(ascii: "E")) {
                    end += 1
                }
                copy(upTo: end + 2)
            case UInt8(ascii: "C"):
                throw .init(code: "invalid escape sequence", argument: "\\C")
            case UInt8(ascii: "B"):
                hasNonWordBoundary = true
                copy(upTo: index + 2)
            case UInt8(ascii: "p"), UInt8(ascii: "P"), UInt8(ascii: "x"):
                copy(upTo: index + 2)
                if byte(at: index) == UInt8(ascii: "{") {
                    var end = index
                    while end < bytes.count, bytes[end] != UInt8(ascii: "}") { end += 1 }
                    copy(upTo: end + 1)
                }
            default:
                copy(upTo: index + 2)
            }
        }

        /// A bracketed class, copied as it is: inside it `(` is a literal. Go's
        /// rules for where it ends: a `]` right after `[` or `[^` is a literal,
        /// `[:name:]` is one item, an escape is two bytes or more.
        private mutating func characterClass() {
            var end = index + 1
            if byte(at: end) == UInt8(ascii: "^") { end += 1 }
            if byte(at: end) == UInt8(ascii: "]") { end += 1 }
            while end < bytes.count, bytes[end] != UInt8(ascii: "]") {
                if bytes[end] == UInt8(ascii: "["), byte(at: end + 1) == UInt8(ascii: ":"),
                   let close = Self.find(Array(":]".utf8), in: bytes, from: end + 2) {
                    end = close + 2
                } else if bytes[end] == UInt8(ascii: "\\") {
                    let kind = byte(at: end + 1)
                    end += 2
                    if kind == UInt8(ascii: "p") || kind == UInt8(ascii: "P") || kind == UInt8(ascii: "x"),
                       byte(at: end) == UInt8(ascii: "{") {
                        while end < bytes.count, bytes[end] != UInt8(ascii: "}") { end += 1 }
                        end += 1
                    }
                } else {
                    end += 1
                }
            }
            copy(upTo: end + 1)  // past `]`; a missing one is RE2's error to report
        }

        /// `(`: a capture group, `(?P<name>` / `(?<name>` (named, written as `(`),
        /// or flags (`(?i)`, `(?i-s:`), read as Go's `parsePerlFlags` reads them.
        private mutating func group() throws(RelabelRegex.CompileError) {
            guard byte(at: index + 1) == UInt8(ascii: "?") else {
                openGroups.append((capture: true, chainInside: 0))
                groupNames.append(nil)
                copy(upTo: index + 1)
                return
            }
            let rest = bytes[index...]
            let nameStart: Int
            if rest.count > 4 && byte(at: index + 2) == UInt8(ascii: "P") && byte(at: index + 3) == UInt8(ascii: "<") {
                nameStart = index + 4
            } else if rest.count > 3 && byte(at: index + 2) == UInt8(ascii: "<") {
                nameStart = index + 3
            } else {
                try flags()
                return
            }
            guard let end = rest.firstIndex(of: UInt8(ascii: ">")) else {
                throw .init(code: "invalid named capture", argument: String(decoding: rest, as: UTF8.self))
            }
            let name = bytes[nameStart..<end]
            guard Self.isValidGroupName(name) else {
                throw .init(code: "invalid named capture", argument: String(decoding: bytes[index...end], as: UTF8.self))
            }
            openGroups.append((capture: true, chainInside: 0))
            groupNames.append(String(decoding: name, as: UTF8.self))
            output.append(UInt8(ascii: "("))
            index = end + 1
        }

        /// `(?` then flags `imsU`, at most one `-` (with a flag after it), then `)`
        /// (flags for the rest of the group) or `:` (a group of its own). Anything
        /// else is refused, named up to the offending character, as Go names it.
        private mutating func flags() throws(RelabelRegex.CompileError) {
            var position = index + 2
            var negated = false
            var sawFlag = false
            while position < bytes.count {
                let character = bytes[position]
                switch character {
                case UInt8(ascii: "i"), UInt8(ascii: "m"), UInt8(ascii: "s"), UInt8(ascii: "U"):
                    sawFlag = true
                    position += 1
                    continue
                case UInt8(ascii: "-") where !negated:
                    negated = true
                    sawFlag = false
                    position += 1
                    continue
                case UInt8(ascii: ":"), UInt8(ascii: ")"):
                    guard negated && !sawFlag else {
                        if character == UInt8(ascii: ":") { openGroups.append((capture: false, chainInside: 0)) }
                        copy(upTo: position + 1)
                        return
                    }
                default:
                    break
                }
                // The offending character, whole.
                position += 1
                while position < bytes.count, bytes[position] & 0xC0 == 0x80 { position += 1 }
                break
            }
            throw .init(code: "invalid or unsupported Perl syntax", argument: String(decoding: bytes[index..<position], as: UTF8.self))
        }

        /// `)`: a group ends. A capture adds a level to the chain inside it; a chain
        /// too long is refused here, as Go refuses it when it builds the node.
        private mutating func closeGroup() throws(RelabelRegex.CompileError) {
            guard let group = openGroups.popLast() else { return }  // RE2 reports the stray `)`
            let chain = group.chainInside + (group.capture ? 1 : 0)
            if group.capture && chain >= Self.captureChainLimit {
                throw .init(code: "expression nests too deeply", argument: String(decoding: bytes, as: UTF8.self))
            }
            if openGroups.isEmpty {
                deepestCaptureChain = max(deepestCaptureChain, chain)
            } else {
                openGroups[openGroups.count - 1].chainInside = max(openGroups[openGroups.count - 1].chainInside, chain)
            }
        }

        /// `{`: a counted repeat if it reads as one (Go's `parseRepeat`), else a
        /// literal. Go refuses counts over 1000 (and min > max); it reads numbers of
        /// 10^8 and more as too big rather than as text, unlike RE2.
        private mutating func countedRepeat() throws(RelabelRegex.CompileError) {
            var position = index + 1
            func number() -> Int?? {
                // nil: not a number; .some(nil): too big.
                guard let first = byte(at: position), first >= 0x30, first <= 0x39 else { return nil }
                if first == 0x30, let second = byte(at: position + 1), second >= 0x30, second <= 0x39 { return nil }
                var value: Int? = 0
                while let digit = byte(at: position), digit >= 0x30, digit <= 0x39 {
                    if let current = value { value = current >= 100_000_000 ? nil : current * 10 + Int(digit - 0x30) }
                    position += 1
                }
                return .some(value)
            }
            guard let minimum = number() else { copy(upTo: index + 1); return }
            var maximum: Int?? = minimum
            if byte(at: position) == UInt8(ascii: ",") {
                position += 1
                if byte(at: position) == UInt8(ascii: "}") {
                    maximum = .some(-1)
                } else {
                    guard let parsed = number() else { copy(upTo: index + 1); return }
                    maximum = parsed
                }
            }
            guard byte(at: position) == UInt8(ascii: "}") else { copy(upTo: index + 1); return }
            let text = String(decoding: bytes[index...position], as: UTF8.self)
            guard let low = minimum, let high = maximum ?? nil, low <= 1000, high <= 1000, high < 0 || low <= high else {
                throw .init(code: "invalid repeat count", argument: text)
            }
            copy(upTo: position + 1)
        }

        /// Go's `isValidCaptureName`: one or more of `[0-9A-Za-z_]`.
        private static func isValidGroupName(_ name: ArraySlice<UInt8>) -> Bool {
            !name.isEmpty && name.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F
            }
        }

        private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
            guard haystack.count >= needle.count else { return nil }
            var position = start
            while position + needle.count <= haystack.count {
                if haystack[position..<(position + needle.count)].elementsEqual(needle) { return position }
                position += 1
            }
            return nil
        }
    }
}
