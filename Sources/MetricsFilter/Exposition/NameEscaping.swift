/// How names that are not legacy names (`[a-zA-Z_:][a-zA-Z0-9_:]*`, no `:` in a label
/// name) reach a scraper: the `escaping=` of the Accept clause it is answered under,
/// with prometheus/common's schemes (`model.EscapeName`). A scraper that asked for
/// `allow-utf-8` gets UTF-8 names, quoted; any other gets them escaped, because one
/// name its validation refuses fails its whole scrape ("invalid metric name or label
/// names"). A legacy name is never changed, under any scheme.
///
/// Two choices differ from Go's `EscapeMetricFamily`, so that the output always parses:
/// a label name is escaped by the label rule (a `:` in it is escaped, as
/// prometheus_client does; Go keeps it, which Prometheus's lexer then refuses), and a
/// sample name of a family (`_total`, `_bucket`, ...) is its family's escaped name plus
/// the suffix, so the two stay one family under `dots` and `values` too.
public enum NameEscaping: String, Sendable, Hashable, CaseIterable {
    /// Prometheus 3's default: names as they are.
    case allowUTF8 = "allow-utf-8"
    /// Each character that a legacy name cannot hold becomes `_`.
    case underscores
    /// `.` becomes `_dot_`, `_` becomes `__`, any other such character `__`.
    case dots
    /// `U__`, then `_` as `__` and any other such character as `_` + its code point in
    /// lower-case hex + `_`.
    case values

    /// The scheme an Accept clause's `escaping=` names; nil for an unknown value.
    public init?(parameter: String) {
        self.init(rawValue: parameter.lowercased())
    }

    /// What a scraper gets when its clause says nothing: prometheus/common's
    /// `model.NameEscapingScheme` since v0.59.0, what Go and Python exporters answer.
    public static let unspecified = NameEscaping.underscores

    /// Whether names pass unchanged.
    public var keepsUTF8: Bool { self == .allowUTF8 }

    /// A metric name as the scraper must get it.
    public func metricName(_ name: [UInt8]) -> [UInt8] {
        guard self != .allowUTF8, !LabelNames.isValidMetricName(name), !name.isEmpty else { return name }
        return escape(name, colonAllowed: true)
    }

    /// A label name as the scraper must get it.
    public func labelName(_ name: [UInt8]) -> [UInt8] {
        guard self != .allowUTF8, !LabelNames.isValid(name), !name.isEmpty else { return name }
        return escape(name, colonAllowed: false)
    }

    /// A sample's name within `family` (its metadata's name, as the app wrote it): the
    /// family's escaped name and the sample's suffix, when it is one of the family's.
    public func sampleName(_ name: [UInt8], family: [UInt8]?) -> [UInt8] {
        guard self != .allowUTF8, !LabelNames.isValidMetricName(name) else { return name }
        if let family, name.count >= family.count, name.starts(with: family) {
            let suffix = name[family.count...]
            if suffix.isEmpty || Self.familySuffixes.contains(where: { suffix.elementsEqual($0.utf8) }) {
                return metricName(family) + suffix
            }
        }
        return metricName(name)
    }

    /// Whether the scraper's name validation takes `name` as a metric name.
    public func isValidMetricName(_ name: [UInt8]) -> Bool {
        name.withUnsafeBufferPointer(isValidMetricName)
    }

    func isValidMetricName(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        keepsUTF8 ? !name.isEmpty && GoUTF8.isValid(name) : LabelNames.isValidMetricName(name)
    }

    /// Whether the scraper's name validation takes `name` as a label name.
    public func isValidLabelName(_ name: [UInt8]) -> Bool {
        name.withUnsafeBufferPointer(isValidLabelName)
    }

    func isValidLabelName(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        keepsUTF8 ? !name.isEmpty && GoUTF8.isValid(name) : LabelNames.isValid(name)
    }

    private static let familySuffixes = ["_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info"]

    private func escape(_ name: [UInt8], colonAllowed: Bool) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(name.count + 8)
        if self == .values { output.append(contentsOf: "U__".utf8) }
        var offset = 0
        // Invalid UTF-8 reads as U+FFFD, as Go's range over a string does.
        for scalar in String(decoding: name, as: UTF8.self).unicodeScalars {
            defer { offset += scalar.utf8.count }
            let value = scalar.value
            let isLetter = (value >= 0x61 && value <= 0x7A) || (value >= 0x41 && value <= 0x5A)
            let isDigit = value >= 0x30 && value <= 0x39
            let isUnderscore = value == 0x5F
            let keeps = isLetter || (isDigit && offset > 0) || (colonAllowed && value == 0x3A)
            switch self {
            case .allowUTF8:
                output.append(contentsOf: scalar.utf8)
            case .underscores:
                if keeps || isUnderscore { output.append(UInt8(truncatingIfNeeded: value)) } else { output.append(0x5F) }
            case .dots:
                if isUnderscore {
                    output.append(contentsOf: "__".utf8)
                } else if value == 0x2E {
                    output.append(contentsOf: "_dot_".utf8)
                } else if keeps {
                    output.append(UInt8(truncatingIfNeeded: value))
                } else {
                    output.append(contentsOf: "__".utf8)
                }
            case .values:
                if isUnderscore {
                    output.append(contentsOf: "__".utf8)
                } else if keeps {
                    output.append(UInt8(truncatingIfNeeded: value))
                } else {
                    output.append(0x5F)
                    output.append(contentsOf: String(value, radix: 16).utf8)
                    output.append(0x5F)
                }
            }
        }
        return output
    }
}

extension NameEscaping {
    /// Escapes the names of a parsed sample (its name, within the app's `family`, its
    /// label names and its exemplar's); a changed sample is marked to be written
    /// anew. False when two label names become one (`a.b` and `a_b` under
    /// `underscores`): the sample cannot be written. An exemplar whose names clash is
    /// left out.
    func escape(_ sample: inout Sample, family: [UInt8]?) -> Bool {
        guard !keepsUTF8 else { return true }
        var changed = false
        let name = sampleName(sample.name, family: family)
        if name != sample.name {
            sample.name = name
            changed = true
        }
        guard escapeLabelNames(&sample.labels, changed: &changed) else { return false }
        if var exemplar = sample.exemplar {
            if escapeLabelNames(&exemplar.labels, changed: &changed) {
                sample.exemplar = exemplar
            } else {
                sample.exemplar = nil
                changed = true
            }
        }
        if changed {
            sample.needsRewrite = true
            sample.quotedName = false
        }
        return true
    }

    /// A HELP, TYPE or UNIT line with its name escaped (any other line as it is).
    func escape(_ metadata: ExpositionLine) -> ExpositionLine {
        switch metadata {
        case .help(let name, let text): return .help(name: metricName(name), text: text)
        case .type(let name, let type): return .type(name: metricName(name), type: type)
        case .unit(let name, let unit): return .unit(name: metricName(name), unit: unit)
        default: return metadata
        }
    }

    private func escapeLabelNames(_ labels: inout [Label], changed: inout Bool) -> Bool {
        var renamed = false
        for index in labels.indices {
            let name = labelName(labels[index].name)
            if name != labels[index].name {
                labels[index].name = name
                renamed = true
            }
        }
        guard renamed else { return true }
        changed = true
        for index in labels.indices where labels[(index + 1)...].contains(where: { $0.name == labels[index].name }) {
            return false
        }
        return true
    }
}
