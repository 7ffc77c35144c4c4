/// A label as the filter sees it: name and value as raw UTF-8, the value unescaped.
public struct Label: Hashable, Sendable {
    public var name: [UInt8]
    public var value: [UInt8]

    public init(name: [UInt8], value: [UInt8]) {
        self.name = name
        self.value = value
    }

    public init(_ name: String, _ value: String) {
        self.name = Array(name.utf8)
        self.value = Array(value.utf8)
    }
}

/// ` # {labels} value [timestamp]` after an OpenMetrics sample.
public struct Exemplar: Hashable, Sendable {
    public var labels: [Label]
    public var value: [UInt8]
    public var timestamp: [UInt8]?
}

/// One sample line: the metric name, its labels in input order, and the value and
/// timestamp as the text they were written in (validated, never reformatted).
public struct Sample: Hashable, Sendable {
    public var name: [UInt8]
    public var labels: [Label]
    public var value: [UInt8]
    public var timestamp: [UInt8]?
    public var exemplar: Exemplar?
    /// The name was written quoted inside the braces (Prometheus 3 UTF-8 names).
    public var quotedName: Bool
    /// The line is readable but must be written anew to be valid for strict parsers
    /// (an escape such as `\t` in a label value).
    public var needsRewrite = false
}

/// The metric types of the two formats.
public enum MetricType: String, Sendable, Hashable, CaseIterable {
    case counter, gauge, histogram, gaugehistogram, stateset, info, summary, untyped, unknown
}

/// What one line of an exposition is.
public enum ExpositionLine: Hashable, Sendable {
    case blank
    case help(name: [UInt8], text: [UInt8])
    case type(name: [UInt8], type: MetricType)
    case unit(name: [UInt8], unit: [UInt8])
    /// Any other `#` line of the text format.
    case comment
    case eof
    case sample(Sample)
}

/// Why a line was not understood: short, fixed words, for a counter label.
public struct LineError: Error, Hashable, Sendable {
    public var reason: StaticString
    public static func == (lhs: LineError, rhs: LineError) -> Bool { lhs.reason.description == rhs.reason.description }
    public func hash(into hasher: inout Hasher) { hasher.combine(reason.description) }
}
