/// The wire shape of client_model's `Metric` and the messages in it: for each known
/// field, the wire types a protobuf decoder takes (a repeated number also packed) and,
/// for a message, its own shape. A metric that does not fit is refused before any of
/// it is passed on, raw fields included: Prometheus's decoder would fail the whole
/// scrape on it, where the text formats lose one line. Unknown fields may be anything.
///
/// A metric is checked in two steps, the same in every path so that a malformed one is
/// refused for the same reason whichever path meets it: its own fields first
/// (`readFields`), then the messages inside them, in order (`validateInside`). The
/// memo's replay takes the second step without the label pairs: their bytes are those
/// of a metric checked before (the predicted metric's replay takes the first one from
/// just after its label fields, `readFields(of:from:into:)`, for the same reason). Both are plain loops over a `ProtoWire.FieldReader` and
/// a `switch` (no closures or tables; the fields go to a buffer the filter reuses):
/// they run for every metric of a scrape.
enum MetricSchema {
    private enum Message {
        case metric, labelPair, gauge, counter, summary, quantile, histogram, bucket, span, exemplar, timestamp
    }

    /// What a field may be.
    private enum Expected {
        /// Unknown to the schema: anything.
        case anything
        /// The wire types taken, as a bit set of their raw values.
        case scalar(UInt8)
        case message(Message)
    }

    private static let varint: Expected = .scalar(1 << ProtoWire.WireType.varint.rawValue)
    private static let fixed64: Expected = .scalar(1 << ProtoWire.WireType.fixed64.rawValue)
    private static let bytes: Expected = .scalar(1 << ProtoWire.WireType.lengthDelimited.rawValue)
    /// A repeated number: one record each, or packed in one length-delimited record.
    private static let repeatedVarint: Expected = .scalar(1 << ProtoWire.WireType.varint.rawValue
        | 1 << ProtoWire.WireType.lengthDelimited.rawValue)
    private static let repeatedFixed64: Expected = .scalar(1 << ProtoWire.WireType.fixed64.rawValue
        | 1 << ProtoWire.WireType.lengthDelimited.rawValue)

    private static func expected(_ number: Int, in message: Message) -> Expected {
        switch message {
        case .metric:
            switch number {
            case 1: .message(.labelPair)
            case 2, 5: .message(.gauge)  // Gauge and Untyped
            case 3: .message(.counter)
            case 4: .message(.summary)
            case 6: varint
            case 7: .message(.histogram)
            default: .anything
            }
        case .labelPair:
            number == 1 || number == 2 ? bytes : .anything
        case .gauge:
            number == 1 ? fixed64 : .anything
        case .counter:
            switch number {
            case 1: fixed64
            case 2: .message(.exemplar)
            case 3: .message(.timestamp)
            default: .anything
            }
        case .summary:
            switch number {
            case 1: varint
            case 2: fixed64
            case 3: .message(.quantile)
            case 4: .message(.timestamp)
            default: .anything
            }
        case .quantile:
            number == 1 || number == 2 ? fixed64 : .anything
        case .histogram:
            switch number {
            case 1, 5, 7: varint
            case 2, 4, 6, 8: fixed64
            case 3: .message(.bucket)
            case 9, 12: .message(.span)
            case 10, 13: repeatedVarint
            case 11, 14: repeatedFixed64
            case 15: .message(.timestamp)
            case 16: .message(.exemplar)
            default: .anything
            }
        case .bucket:
            switch number {
            case 1: varint
            case 2, 4: fixed64
            case 3: .message(.exemplar)
            default: .anything
            }
        case .span:
            number == 1 || number == 2 ? varint : .anything
        case .exemplar:
            switch number {
            case 1: .message(.labelPair)
            case 2: fixed64
            case 3: .message(.timestamp)
            default: .anything
            }
        case .timestamp:
            number == 1 || number == 2 ? varint : .anything
        }
    }

    /// Whether `field` has a wire type its number takes in `message`; the message
    /// inside it, if any.
    private static func check(_ field: ProtoWire.Field, in message: Message) throws(ProtoWire.Malformed) -> Message? {
        switch expected(field.number, in: message) {
        case .anything:
            return nil
        case .scalar(let types):
            guard types & 1 << field.wireType.rawValue != 0 else { throw ProtoWire.Malformed(reason: "bad field type") }
            return nil
        case .message(let inner):
            guard field.wireType == .lengthDelimited else { throw ProtoWire.Malformed(reason: "bad field type") }
            return inner
        }
    }

    /// The first step: the top-level fields of `metric`, into `fields` (emptied
    /// first), each of a wire type its number takes.
    /// `from`: where to start, a field's start (the memo's replay knows the fields
    /// before it).
    static func readFields(of metric: UnsafeRawBufferPointer, from start: Int = 0,
                           into fields: inout [ProtoWire.Field]) throws(ProtoWire.Malformed) {
        fields.removeAll(keepingCapacity: true)
        var reader = ProtoWire.FieldReader(metric, from: start)
        while let field = try reader.next() {
            _ = try check(field, in: .metric)
            fields.append(field)
        }
    }

    /// The second step: the messages inside `fields` (as `readFields` gave them), in
    /// order, but the label pairs' when `skippingLabels`. Returns whether the metric
    /// holds an exemplar (a counter's, a classic bucket's or a native histogram's).
    static func validateInside(_ metric: UnsafeRawBufferPointer, fields: [ProtoWire.Field],
                               skippingLabels: Bool) throws(ProtoWire.Malformed) -> Bool {
        var hasExemplar = false
        for field in fields where !(skippingLabels && field.number == MetricField.Metric.label) {
            // `readFields` checked the wire type: a known message is length-delimited.
            guard case .message(let inner) = expected(field.number, in: .metric) else { continue }
            try validate(metric.value(of: field), inner, &hasExemplar)
        }
        return hasExemplar
    }

    /// Both steps: the top-level fields of `metric`; throws when it is not a
    /// well-formed `Metric`.
    @discardableResult
    static func validate(metric: UnsafeRawBufferPointer) throws(ProtoWire.Malformed) -> [ProtoWire.Field] {
        var fields: [ProtoWire.Field] = []
        try readFields(of: metric, into: &fields)
        _ = try validateInside(metric, fields: fields, skippingLabels: false)
        return fields
    }

    private static func validate(_ message: UnsafeRawBufferPointer, _ kind: Message,
                                 _ hasExemplar: inout Bool) throws(ProtoWire.Malformed) {
        if kind == .exemplar { hasExemplar = true }
        var reader = ProtoWire.FieldReader(message)
        while let field = try reader.next() {
            if let inner = try check(field, in: kind) { try validate(message.value(of: field), inner, &hasExemplar) }
        }
    }
}
