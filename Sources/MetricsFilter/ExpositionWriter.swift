/// Writes samples in either format. Label values are escaped the one way both
/// formats read: `\\`, `\"` and `\n`.
public enum ExpositionWriter {
    public static func write(name: [UInt8], labels: [Label], value: [UInt8], timestamp: [UInt8]?, exemplar: Exemplar?,
                             into output: inout [UInt8]) {
        output.append(contentsOf: name)
        if !labels.isEmpty {
            writeLabels(labels, into: &output)
        }
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

    static func writeLabels(_ labels: [Label], into output: inout [UInt8], emptyBraces: Bool = false) {
        output.append(UInt8(ascii: "{"))
        for (index, label) in labels.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            output.append(contentsOf: label.name)
            output.append(contentsOf: "=\"".utf8)
            escape(label.value, into: &output)
            output.append(UInt8(ascii: "\""))
        }
        output.append(UInt8(ascii: "}"))
    }

    static func escape(_ value: [UInt8], into output: inout [UInt8]) {
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
