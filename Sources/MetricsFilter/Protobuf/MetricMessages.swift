/// The field numbers of `io.prometheus.client`'s messages (client_model's
/// `metrics.proto`) that the filter reads or writes; every other field is carried
/// through as the bytes it came in.
enum MetricField {
    enum Family {
        static let name = 1
        static let help = 2
        static let type = 3
        static let metric = 4
        static let unit = 5
    }

    enum Metric {
        static let label = 1
        static let counter = 3
        static let summary = 4
        static let histogram = 7
    }

    enum LabelPair {
        static let name = 1
        static let value = 2
    }

    /// `Counter.exemplar`.
    static let counterExemplar = 2
    /// `Summary.quantile` (repeated).
    static let summaryQuantile = 3
    /// `Bucket.upper_bound` (a double).
    static let bucketUpperBound = 2
    /// `Histogram.bucket` (repeated), and `Bucket.exemplar` in it.
    static let histogramBucket = 3
    static let bucketExemplar = 3
    /// `Histogram.exemplars` (native histograms).
    static let histogramExemplars = 16
    /// `Exemplar.label` (repeated LabelPair).
    static let exemplarLabel = 1
}

/// Reading and writing the pieces of those messages the filter changes.
enum MetricMessages {
    /// A `LabelPair` message's name and value; a name or value that is not UTF-8 is
    /// refused, as Prometheus refuses it.
    static func labelPair(_ message: UnsafeRawBufferPointer) throws(ProtoWire.Malformed) -> Label {
        var label = Label(name: [], value: [])
        var reader = ProtoWire.FieldReader(message)
        while let field = try reader.next() {
            guard field.wireType == .lengthDelimited else { continue }
            if field.number == MetricField.LabelPair.name { label.name = Array(message.value(of: field)) }
            if field.number == MetricField.LabelPair.value { label.value = Array(message.value(of: field)) }
        }
        guard label.name.withUnsafeBufferPointer(GoUTF8.isValid), label.value.withUnsafeBufferPointer(GoUTF8.isValid) else {
            throw ProtoWire.Malformed(reason: "invalid UTF-8")
        }
        return label
    }

    /// The labels of a message whose field `number` holds `LabelPair`s.
    static func labels(of message: UnsafeRawBufferPointer, fields: [ProtoWire.Field],
                       number: Int) throws(ProtoWire.Malformed) -> [Label] {
        var labels: [Label] = []
        for field in fields where field.number == number {
            guard field.wireType == .lengthDelimited else { throw ProtoWire.Malformed(reason: "bad label") }
            labels.append(try labelPair(message.value(of: field)))
        }
        return labels
    }

    /// Each of `labels` as a label-pair field numbered `number`.
    static func appendLabelPairs(_ labels: [Label], field number: Int, to output: inout [UInt8]) {
        for label in labels { appendLabelPair(label, field: number, to: &output) }
    }

    static func appendLabelPair(_ label: Label, field number: Int, to output: inout [UInt8]) {
        // The pair's length first: its two fields go straight to `output`.
        let length = ProtoWire.fieldLength(MetricField.LabelPair.name, payload: label.name.count)
            + ProtoWire.fieldLength(MetricField.LabelPair.value, payload: label.value.count)
        ProtoWire.appendVarint(UInt64(number) << 3 | UInt64(ProtoWire.WireType.lengthDelimited.rawValue), to: &output)
        ProtoWire.appendVarint(UInt64(length), to: &output)
        ProtoWire.appendField(MetricField.LabelPair.name, label.name, to: &output)
        ProtoWire.appendField(MetricField.LabelPair.value, label.value, to: &output)
    }

    /// The fields of `message` but those numbered `number`, appended as they are.
    /// For a message this filter wrote itself (or validated): walking it cannot fail.
    static func appendFields(of message: [UInt8], except number: Int, to output: inout [UInt8]) {
        message.withUnsafeBytes { bytes in
            try? ProtoWire.forEachField(of: bytes) { field in
                if field.number != number { output.append(contentsOf: bytes.whole(field)) }
            }
        }
    }

    /// What becomes of one field of a message being rewritten.
    enum FieldEdit {
        case keep
        case replace([UInt8])
        case remove
    }

    /// `message` with its length-delimited fields of `numbers` passed through `edit`;
    /// nil when nothing changed. Every other field, and every kept one, goes out as
    /// the bytes it came in, in its place.
    /// (`numbers` are one or two: a list, not a set, whose hashing cost more than the
    /// walk.)
    static func rewrite(_ message: UnsafeRawBufferPointer, fields numbers: [Int],
                        _ edit: (Int, UnsafeRawBufferPointer) throws(ProtoWire.Malformed) -> FieldEdit)
        throws(ProtoWire.Malformed) -> [UInt8]? {
        // Nothing is copied until a field changes: then what came before it, at once.
        var output: [UInt8] = []
        var changed = false
        try ProtoWire.forEachField(of: message) { field throws(ProtoWire.Malformed) in
            var outcome = FieldEdit.keep
            if numbers.contains(field.number), field.wireType == .lengthDelimited {
                outcome = try edit(field.number, message.value(of: field))
            }
            switch outcome {
            case .keep:
                if changed { output.append(contentsOf: message.whole(field)) }
            case .replace(let bytes):
                if !changed { output.append(contentsOf: message[0..<field.start]) }
                changed = true
                ProtoWire.appendField(field.number, bytes, to: &output)
            case .remove:
                if !changed { output.append(contentsOf: message[0..<field.start]) }
                changed = true
            }
        }
        return changed ? output : nil
    }
}
