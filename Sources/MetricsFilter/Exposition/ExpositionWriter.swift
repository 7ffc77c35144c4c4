/// Writes samples in either format. Label values are escaped the one way both
/// formats read: `\\`, `\"` and `\n`.
public enum ExpositionWriter {
    public static func write(name: [UInt8], labels: [Label], value: [UInt8], timestamp: [UInt8]?, exemplar: Exemplar?,
                             into output: inout [UInt8]) {
        writeSeries(name: name, labels: labels, into: &output)
        output.append(UInt8(ascii: " "))
        output.append(contentsOf: value)
        if let timestamp {
            output.append(UInt8(ascii: " "))
            output.append(contentsOf: timestamp)
        }
        if let exemplar {
            output.append(contentsOf: " # ".utf8)
            writeLabels(exemplar.labels, into: &output, emptyBraces: true)
            output.append(UInt8(ascii: " "))
            output.append(contentsOf: exemplar.value)
            if let timestamp = exemplar.timestamp {
                output.append(UInt8(ascii: " "))
                output.append(contentsOf: timestamp)
            }
        }
        output.append(0x0A)
    }

    /// A sample's name and labels: what comes before its value.
    static func writeSeries(name: [UInt8], labels: [Label], into output: inout [UInt8]) {
        if LabelNames.isValidMetricName(name) {
            output.append(contentsOf: name)
            if !labels.isEmpty {
                writeLabels(labels, into: &output)
            }
        } else {
            // A Prometheus 3 UTF-8 name goes inside the braces, quoted.
            output.append(contentsOf: "{\"".utf8)
            escape(name, into: &output)
            output.append(UInt8(ascii: "\""))
            if !labels.isEmpty {
                output.append(UInt8(ascii: ","))
                writeLabelList(labels, into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// A metric name as metadata writes it: plain, or quoted when it is not a valid
    /// plain name.
    static func writeName(_ name: [UInt8], into output: inout [UInt8]) {
        if LabelNames.isValidMetricName(name) {
            output.append(contentsOf: name)
        } else {
            output.append(UInt8(ascii: "\""))
            escape(name, into: &output)
            output.append(UInt8(ascii: "\""))
        }
    }

    static func writeLabels(_ labels: [Label], into output: inout [UInt8], emptyBraces: Bool = false) {
        output.append(UInt8(ascii: "{"))
        writeLabelList(labels, into: &output)
        output.append(UInt8(ascii: "}"))
    }

    /// `name="value",...` without the braces.
    static func writeLabelList(_ labels: [Label], into output: inout [UInt8]) {
        for (index, label) in labels.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            if LabelNames.isValid(label.name) {
                output.append(contentsOf: label.name)
            } else {
                output.append(UInt8(ascii: "\""))
                escape(label.name, into: &output)
                output.append(UInt8(ascii: "\""))
            }
            output.append(contentsOf: "=\"".utf8)
            escape(label.value, into: &output)
            output.append(UInt8(ascii: "\""))
        }
    }

    static func escape<Value: Collection<UInt8>>(_ value: Value, into output: inout [UInt8]) {
        guard value.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == 0x0A }) else {
            output.append(contentsOf: value)
            return
        }
        for byte in value {
            switch byte {
            case UInt8(ascii: "\\"): output.append(contentsOf: "\\\\".utf8)
            case UInt8(ascii: "\""): output.append(contentsOf: "\\\"".utf8)
            case 0x0A: output.append(contentsOf: "\\n".utf8)
            default: output.append(byte)
            }
        }
    }
}
