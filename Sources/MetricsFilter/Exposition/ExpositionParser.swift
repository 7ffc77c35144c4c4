/// Parses one line of the text format 0.0.4 or OpenMetrics 1.0, on raw bytes. The
/// text format is read as leniently as Prometheus reads it (blanks between tokens, a
/// trailing comma in braces); OpenMetrics as strictly as its ABNF, so a line that
/// passes here and is written back unchanged is valid for a strict parser too.
///
/// About 360 lines: both grammars share their token readers, and splitting them would
/// put the two formats' differences in two places.
public enum ExpositionParser {
    public static func parse(_ line: UnsafeRawBufferPointer, format: ExpositionFormat) -> Result<ExpositionLine, LineError> {
        var cursor = Cursor(bytes: line, strict: format == .openMetrics)
        do {
            return .success(try cursor.line())
        } catch {
            return .failure(error)
        }
    }

    public static func parse(_ line: [UInt8], format: ExpositionFormat) -> Result<ExpositionLine, LineError> {
        line.withUnsafeBytes { parse($0, format: format) }
    }

    /// Whether `bytes` is `word` (lower-case ASCII) in any case.
    static func equalsIgnoringCase<Bytes: Collection<UInt8>>(_ bytes: Bytes, _ word: StaticString) -> Bool {
        guard bytes.count == word.utf8CodeUnitCount else { return false }
        return word.withUTF8Buffer { expected in
            zip(bytes, expected).allSatisfy { $0 | 0x20 == $1 }
        }
    }
}

private struct Cursor {
    let bytes: UnsafeRawBufferPointer
    /// OpenMetrics: single spaces, no blank lines, only the three escapes.
    let strict: Bool
    var index = 0
    /// A label value held an escape other than `\\`, `\"` and `\n`, or the line is
    /// otherwise readable but not in the form strict parsers take: write it anew.
    var unusualEscape = false
    /// The quoted metric name came after a label in the braces.
    var nameCameAfterLabels = false

    init(bytes: UnsafeRawBufferPointer, strict: Bool) {
        self.bytes = bytes
        self.strict = strict
    }

    var atEnd: Bool { index >= bytes.count }
    var current: UInt8 { bytes[index] }

    mutating func line() throws(LineError) -> ExpositionLine {
        if strict {
            guard !bytes.isEmpty else { throw LineError(reason: "blank line") }
        } else {
            skipBlanks()
            if atEnd { return .blank }
        }
        if current == UInt8(ascii: "#") {
            return try metadata()
        }
        return .sample(try sample())
    }

    // MARK: Metadata

    mutating func metadata() throws(LineError) -> ExpositionLine {
        index += 1
        if strict {
            guard !atEnd, current == UInt8(ascii: " ") else { throw LineError(reason: "bad comment") }
            index += 1
        } else {
            skipBlanks()
        }
        let keyword = word()
        if strict && keyword.elementsEqual("EOF".utf8) {
            guard atEnd else { throw LineError(reason: "text after EOF keyword") }
            return .eof
        }
        let isHelp = keyword.elementsEqual("HELP".utf8)
        let isType = keyword.elementsEqual("TYPE".utf8)
        let isUnit = strict && keyword.elementsEqual("UNIT".utf8)
        guard isHelp || isType || isUnit else {
            if strict { throw LineError(reason: "unknown comment") }
            return .comment
        }
        if strict {
            guard !atEnd, current == UInt8(ascii: " ") else { throw LineError(reason: "bad metadata") }
            index += 1
        } else {
            guard skipBlanks() > 0 else {
                // `# HELPER ...` and the like are plain comments in the text format.
                return .comment
            }
        }
        let name = try metricName(allowQuoted: true)
        if isHelp {
            if atEnd {
                // OpenMetrics writes an empty HELP as `# HELP name ` (with the space).
                if strict { throw LineError(reason: "bad HELP") }
                return .help(name: name, text: [])
            }
            guard current == UInt8(ascii: " ") || (!strict && current == UInt8(ascii: "\t")) else {
                throw LineError(reason: "bad HELP")
            }
            if strict { index += 1 } else { skipBlanks() }
            let text = Array(bytes[index...])
            try checkHelpText(text)
            return .help(name: name, text: text)
        }
        if strict {
            guard !atEnd, current == UInt8(ascii: " ") else { throw LineError(reason: "bad metadata") }
            index += 1
        } else {
            guard skipBlanks() > 0 else { throw LineError(reason: "bad TYPE") }
        }
        let value = Array(word())
        if !strict { skipBlanks() }
        guard atEnd else { throw LineError(reason: "bad metadata") }
        if isUnit {
            guard value.allSatisfy(ExpositionTokens.isMetricNameByte) else { throw LineError(reason: "bad UNIT") }
            return .unit(name: name, unit: value)
        }
        guard let type = MetricType(rawValue: String(decoding: value, as: UTF8.self)) else {
            throw LineError(reason: "unknown type")
        }
        let allowed: Set<MetricType> = strict
            ? [.counter, .gauge, .histogram, .gaugehistogram, .stateset, .info, .summary, .unknown]
            : [.counter, .gauge, .histogram, .summary, .untyped]
        guard allowed.contains(type) else { throw LineError(reason: "unknown type") }
        return .type(name: name, type: type)
    }

    func checkHelpText(_ text: [UInt8]) throws(LineError) {
        guard ExpositionTokens.isValidUTF8(text) else { throw LineError(reason: "invalid UTF-8") }
    }

    // MARK: Samples

    mutating func sample() throws(LineError) -> Sample {
        var name: [UInt8]?
        var quotedName = false
        var labels: [Label] = []
        if current != UInt8(ascii: "{") {
            name = try metricName(allowQuoted: false)
        }
        let blanks = strict || name == nil ? 0 : skipBlanks()
        if !atEnd, current == UInt8(ascii: "{") {
            index += 1
            // Prometheus 3: a quoted string alone in the braces is the metric name,
            // `{"my.metric","a.b"="v"} 1` (first, as exporters write it, or anywhere,
            // as Prometheus reads it).
            var quoted: [UInt8]?
            labels = try labelList(closing: UInt8(ascii: "}"), name: &quoted)
            if let quoted {
                guard name == nil else { throw LineError(reason: "two metric names") }
                name = quoted
                quotedName = true
                // A legacy name needs no quotes, and a legacy scraper cannot read them.
                if LabelNames.isValidMetricName(quoted) { unusualEscape = true }
                // Anywhere but first, strict parsers (prometheus_client's OpenMetrics
                // one) refuse it: the line is written anew, the name first.
                if nameCameAfterLabels { unusualEscape = true }
            }
        } else if blanks > 0 {
            index -= 1  // the blanks were the separator before the value
        }
        guard let name else { throw LineError(reason: "missing metric name") }
        // The name is a label already: `__name__` in the braces repeats it (Prometheus
        // refuses the sample: "label name __name__ is not unique").
        if labels.contains(where: { $0.name == LabelSet.metricNameLabel }) { throw LineError(reason: "duplicate label") }
        try separator()
        let value = Array(word())
        guard ExpositionTokens.isNumber(value, strict: strict) else { throw LineError(reason: "bad value") }
        var sample = Sample(name: name, labels: labels, value: value, timestamp: nil, exemplar: nil, quotedName: quotedName)
        sample.needsRewrite = unusualEscape
        if !strict { skipBlanks() }
        if atEnd { return sample }
        if strict {
            try separator()
        }
        if current != UInt8(ascii: "#") {
            let timestamp = Array(word())
            guard ExpositionTokens.isTimestamp(timestamp, strict: strict) else { throw LineError(reason: "bad timestamp") }
            sample.timestamp = timestamp
            if !strict { skipBlanks() }
            if atEnd { return sample }
            if strict { try separator() }
        }
        guard strict, current == UInt8(ascii: "#") else { throw LineError(reason: "text after value") }
        sample.exemplar = try exemplar()
        return sample
    }

    mutating func exemplar() throws(LineError) -> Exemplar {
        index += 1
        try separator()
        guard !atEnd, current == UInt8(ascii: "{") else { throw LineError(reason: "bad exemplar") }
        index += 1
        let labels = try labelList(closing: UInt8(ascii: "}"))
        var runes = 0
        for label in labels {
            runes += ExpositionTokens.runeCount(label.name) + ExpositionTokens.runeCount(label.value)
        }
        guard runes <= 128 else { throw LineError(reason: "exemplar labels too long") }
        try separator()
        let value = Array(word())
        guard ExpositionTokens.isNumber(value, strict: true) else { throw LineError(reason: "bad exemplar value") }
        var exemplar = Exemplar(labels: labels, value: value, timestamp: nil)
        if atEnd { return exemplar }
        try separator()
        let timestamp = Array(word())
        guard ExpositionTokens.isTimestamp(timestamp, strict: true) else { throw LineError(reason: "bad exemplar timestamp") }
        exemplar.timestamp = timestamp
        guard atEnd else { throw LineError(reason: "text after exemplar") }
        return exemplar
    }

    /// Labels up to and including `closing`. A quoted string alone (not followed by
    /// `=`) is the metric name, given back in `metricName`; without that parameter
    /// (exemplars) it is refused.
    mutating func labelList(closing: UInt8) throws(LineError) -> [Label] {
        var none: [UInt8]?
        return try labelList(closing: closing, name: &none, allowsName: false)
    }

    mutating func labelList(closing: UInt8, name metricName: inout [UInt8]?,
                            allowsName: Bool = true) throws(LineError) -> [Label] {
        var labels: [Label] = []
        if !strict { skipBlanks() }
        if !atEnd, current == closing {
            index += 1
            return labels
        }
        while true {
            if !strict { skipBlanks() }
            guard !atEnd else { throw LineError(reason: "unclosed label set") }
            if !strict, current == closing, !labels.isEmpty || metricName != nil {
                // `{a="b",}`: Prometheus accepts the trailing comma.
                index += 1
                return labels
            }
            let name: [UInt8]
            if current == UInt8(ascii: "\"") {
                name = try quoted()
                guard !name.isEmpty else { throw LineError(reason: "empty name") }
                if LabelNames.isValid(name) { unusualEscape = true }  // written unquoted
                if !strict { skipBlanks() }
                if !atEnd, current == UInt8(ascii: ",") || current == closing {
                    guard allowsName else { throw LineError(reason: "bad label name") }
                    guard metricName == nil else { throw LineError(reason: "two metric names") }
                    metricName = name
                    nameCameAfterLabels = !labels.isEmpty
                    if current == closing {
                        index += 1
                        return labels
                    }
                    index += 1
                    continue
                }
            } else {
                name = try labelName()
            }
            if !strict { skipBlanks() }
            guard !atEnd, current == UInt8(ascii: "=") else { throw LineError(reason: "missing =") }
            index += 1
            if !strict { skipBlanks() }
            guard !atEnd, current == UInt8(ascii: "\"") else { throw LineError(reason: "missing label value") }
            let value = try quoted()
            if labels.contains(where: { $0.name == name }) { throw LineError(reason: "duplicate label") }
            if labels.isEmpty { labels.reserveCapacity(8) }
            labels.append(Label(name: name, value: value))
            if !strict { skipBlanks() }
            guard !atEnd else { throw LineError(reason: "unclosed label set") }
            if current == closing {
                index += 1
                return labels
            }
            guard current == UInt8(ascii: ",") else { throw LineError(reason: "bad label set") }
            index += 1
        }
    }

    /// A double-quoted string, unescaped. OpenMetrics allows `\\`, `\"` and `\n`
    /// only; the text format keeps any other escape as its two characters, as
    /// Prometheus does.
    mutating func quoted() throws(LineError) -> [UInt8] {
        index += 1
        var value: [UInt8] = []
        while true {
            guard !atEnd else { throw LineError(reason: "unclosed quote") }
            let byte = current
            index += 1
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\") {
                guard !atEnd else { throw LineError(reason: "unclosed quote") }
                let escaped = current
                index += 1
                switch escaped {
                case UInt8(ascii: "\\"): value.append(UInt8(ascii: "\\"))
                case UInt8(ascii: "\""): value.append(UInt8(ascii: "\""))
                case UInt8(ascii: "n"): value.append(0x0A)
                default:
                    // Kept as its two characters, as Prometheus and prometheus_client
                    // read it; written back with the backslash escaped.
                    value.append(UInt8(ascii: "\\"))
                    value.append(escaped)
                    unusualEscape = true
                }
                continue
            }
            if byte == 0x0A { throw LineError(reason: "newline in value") }
            value.append(byte)
        }
        guard ExpositionTokens.isValidUTF8(value) else { throw LineError(reason: "invalid UTF-8") }
        return value
    }

    mutating func metricName(allowQuoted: Bool) throws(LineError) -> [UInt8] {
        if allowQuoted, !atEnd, current == UInt8(ascii: "\"") {
            let name = try quoted()
            guard !name.isEmpty else { throw LineError(reason: "empty name") }
            return name
        }
        let start = index
        while !atEnd, ExpositionTokens.isMetricNameByte(current) { index += 1 }
        guard index > start, !ExpositionTokens.isDigit(bytes[start]) else { throw LineError(reason: "bad metric name") }
        return Array(bytes[start..<index])
    }

    mutating func labelName() throws(LineError) -> [UInt8] {
        let start = index
        while !atEnd, ExpositionTokens.isLabelNameByte(current) { index += 1 }
        guard index > start, !ExpositionTokens.isDigit(bytes[start]) else { throw LineError(reason: "bad label name") }
        return Array(bytes[start..<index])
    }

    /// The separator between tokens: one space (OpenMetrics) or a run of blanks.
    mutating func separator() throws(LineError) {
        if strict {
            guard !atEnd, current == UInt8(ascii: " ") else { throw LineError(reason: "missing space") }
            index += 1
            guard !atEnd, current != UInt8(ascii: " ") else { throw LineError(reason: "double space") }
        } else {
            guard skipBlanks() > 0 else { throw LineError(reason: "missing value") }
            guard !atEnd else { throw LineError(reason: "missing value") }
        }
    }

    /// The bytes up to the next blank.
    mutating func word() -> UnsafeRawBufferPointer.SubSequence {
        let start = index
        while !atEnd, current != UInt8(ascii: " "), current != UInt8(ascii: "\t") { index += 1 }
        return bytes[start..<index]
    }

    @discardableResult
    mutating func skipBlanks() -> Int {
        let start = index
        while !atEnd, current == UInt8(ascii: " ") || current == UInt8(ascii: "\t") { index += 1 }
        return index - start
    }
}
