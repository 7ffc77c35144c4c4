/// A sample line in its plain form, read as positions in the line instead of copies:
/// `name{label="value",...} value [timestamp]` with single spaces, ASCII label values
/// without escapes, distinct label names and no exemplar. Most lines of most
/// expositions look like this, and the filter's fast path handles them without
/// allocating.
///
/// `read` answers only for lines in that form. Anything else (blanks, comments,
/// escapes, UTF-8, quoted names, a trailing comma, extra blanks, a label called
/// `__name__`, an invalid line) is
/// left to `ExpositionParser`, which gives the verdict: a line read here is one the
/// parser reads the same way, in either format.
struct PlainSample: PlainLine {
    struct LabelPosition {
        var nameStart: Int
        var nameEnd: Int
        /// The value, without its quotes.
        var valueStart: Int
        var valueEnd: Int
    }

    /// The line last read; valid until the next line.
    private(set) var line = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
    /// The name is `line[0..<nameEnd]`.
    private(set) var nameEnd = 0
    /// In the order written. Kept between lines so that reading allocates nothing.
    private(set) var labels: [LabelPosition] = []
    /// `line[valueStart...]` is the value and, after a space, the timestamp.
    private(set) var valueStart = 0
    private(set) var valueEnd = 0
    /// `timestampStart == line.count` when there is none.
    private(set) var timestampStart = 0

    init() {
        labels.reserveCapacity(16)
    }

    var value: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: line[valueStart..<valueEnd]) }
    var timestamp: UnsafeBufferPointer<UInt8>? {
        timestampStart < line.count ? UnsafeBufferPointer(rebasing: line[timestampStart...]) : nil
    }

    /// The line last read, its label positions lent: what `PlainLabels` holds, so that
    /// making one for each line retains nothing. Never kept past the `lend` call.
    struct Lent: PlainLine {
        let line: UnsafeBufferPointer<UInt8>
        let nameEnd: Int
        let valueStart: Int
        /// Valid only inside the `lend` call that made it.
        let labels: UnsafeBufferPointer<LabelPosition>
    }

    func lend<Result>(_ body: (Lent) throws -> Result) rethrows -> Result {
        try labels.withUnsafeBufferPointer { try body(Lent(line: line, nameEnd: nameEnd, valueStart: valueStart, labels: $0)) }
    }

    /// The value of the label `name`, if the line has it.
    func labelValue(named name: StaticString) -> UnsafeBufferPointer<UInt8>? {
        for label in labels where ExpositionTokens.equal(labelName(label), name) {
            return labelValue(label)
        }
        return nil
    }

    /// Reads `line` if it is a plain sample; false leaves it to the full parser.
    mutating func read(_ raw: UnsafeRawBufferPointer, strict: Bool) -> Bool {
        let line = raw.assumingMemoryBound(to: UInt8.self)
        self.line = line
        labels.removeAll(keepingCapacity: true)
        let end = line.count
        var index = 0
        // The name.
        guard end > 0, ExpositionTokens.isMetricNameByte(line[0]), !ExpositionTokens.isDigit(line[0]) else { return false }
        while index < end, ExpositionTokens.isMetricNameByte(line[index]) { index += 1 }
        nameEnd = index
        guard index < end else { return false }
        // The labels.
        if line[index] == UInt8(ascii: "{") {
            index += 1
            guard index < end else { return false }
            if line[index] == UInt8(ascii: "}") {
                index += 1
            } else {
                while true {
                    let nameStart = index
                    guard index < end, !ExpositionTokens.isDigit(line[index]) else { return false }
                    while index < end, ExpositionTokens.isLabelNameByte(line[index]) { index += 1 }
                    let nameEnd = index
                    guard nameEnd > nameStart, index + 1 < end, line[index] == UInt8(ascii: "="),
                        line[index + 1] == UInt8(ascii: "\"") else { return false }
                    index += 2
                    let valueStart = index
                    while index < end {
                        let byte = line[index]
                        if byte == UInt8(ascii: "\"") { break }
                        // An escape or UTF-8: the full parser decodes and checks it.
                        guard byte != UInt8(ascii: "\\"), byte < 0x80 else { return false }
                        index += 1
                    }
                    guard index < end else { return false }
                    let label = LabelPosition(nameStart: nameStart, nameEnd: nameEnd, valueStart: valueStart, valueEnd: index)
                    // A label called `__name__` repeats the name: the full parser
                    // refuses the line.
                    if ExpositionTokens.equal(labelName(label), "__name__") { return false }
                    for other in labels where ExpositionTokens.equal(labelName(other), labelName(label)) { return false }
                    labels.append(label)
                    index += 1
                    guard index < end else { return false }
                    if line[index] == UInt8(ascii: "}") {
                        index += 1
                        break
                    }
                    guard line[index] == UInt8(ascii: ","), index + 1 < end, line[index + 1] != UInt8(ascii: "}") else {
                        return false
                    }
                    index += 1
                }
            }
        }
        // One space, the value, and maybe one space and a timestamp.
        guard index + 1 < end, line[index] == UInt8(ascii: " ") else { return false }
        return readValue(from: index + 1, strict: strict)
    }

    /// The bytes before the value's space: what `SeriesMemo` remembers a line by.
    var seriesPart: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: line[0..<(valueStart - 1)]) }

    /// Reads only the value and timestamp of `raw`, from `start` (after the space that
    /// ends a series part the memo confirmed): what a remembered line still needs.
    /// The name and labels are not read (`labels` is left as it was).
    mutating func readValue(of raw: UnsafeRawBufferPointer, from start: Int, strict: Bool) -> Bool {
        line = raw.assumingMemoryBound(to: UInt8.self)
        return readValue(from: start, strict: strict)
    }

    private mutating func readValue(from start: Int, strict: Bool) -> Bool {
        let end = line.count
        var index = start
        guard index < end else { return false }
        valueStart = index
        while index < end, line[index] != UInt8(ascii: " ") {
            guard line[index] != UInt8(ascii: "\t") else { return false }
            index += 1
        }
        valueEnd = index
        guard ExpositionTokens.isNumber(value, strict: strict) else { return false }
        if index == end {
            timestampStart = end
            return true
        }
        index += 1
        timestampStart = index
        guard index < end else { return false }
        while index < end {
            guard line[index] != UInt8(ascii: " "), line[index] != UInt8(ascii: "\t") else { return false }
            index += 1
        }
        return ExpositionTokens.isTimestamp(UnsafeBufferPointer(rebasing: line[timestampStart...]), strict: strict)
    }
}

extension PlainSample {
    /// The labels of a series part known to be in the plain form (one a plain sample
    /// was read from, or one checked to read as one): each name and value, without
    /// checking again; `body` returns false to stop. Empty values are skipped unless
    /// `emptyValuesArePresent`.
    static func forEachLabel(ofSeriesPart bytes: UnsafeBufferPointer<UInt8>, emptyValuesArePresent: Bool,
                             _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Bool) {
        var index = 0
        let end = bytes.count
        while index < end, bytes[index] != UInt8(ascii: "{") { index += 1 }
        index += 1
        while index < end, bytes[index] != UInt8(ascii: "}") {
            let nameStart = index
            while bytes[index] != UInt8(ascii: "=") { index += 1 }
            let name = UnsafeBufferPointer(rebasing: bytes[nameStart..<index])
            index += 2
            let valueStart = index
            while bytes[index] != UInt8(ascii: "\"") { index += 1 }
            let value = UnsafeBufferPointer(rebasing: bytes[valueStart..<index])
            index += 1
            if bytes[index] == UInt8(ascii: ",") { index += 1 }
            if emptyValuesArePresent || !value.isEmpty {
                guard body(name, value) else { return }
            }
        }
    }
}

/// A plain sample line's positions, and the parts of the line they mark.
protocol PlainLine {
    var line: UnsafeBufferPointer<UInt8> { get }
    /// The name is `line[0..<nameEnd]`.
    var nameEnd: Int { get }
    /// Where the value starts, after the space that ends the series part.
    var valueStart: Int { get }
}

extension PlainLine {
    var name: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: line[0..<nameEnd]) }
    /// From the value to the end of the line: what a rewritten line keeps as it was.
    var valueAndTimestamp: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: line[valueStart...]) }

    func labelName(_ label: PlainSample.LabelPosition) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: line[label.nameStart..<label.nameEnd])
    }

    func labelValue(_ label: PlainSample.LabelPosition) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: line[label.valueStart..<label.valueEnd])
    }
}
