/// The wire shape of client_model's `Metric` and the messages in it: for each known
/// field, the wire types a protobuf decoder takes (a repeated number also packed) and,
/// for a message, its own shape. A metric that does not fit is refused before any of
/// it is passed on, raw fields included: Prometheus's decoder would fail the whole
/// scrape on it, where the text formats lose one line. Unknown fields may be anything.
enum MetricSchema {
    private enum Message: Int, CaseIterable {
        case metric, labelPair, gauge, counter, summary, quantile, histogram, bucket, span, exemplar, timestamp
    }

    /// Plain values (no references, no boxes): the table lives for the process.
    private enum Field {
        /// The wire types taken, as a bit set of their raw values.
        case scalar(UInt8)
        case message(Message)
    }

    private static func wireTypes(_ types: ProtoWire.WireType...) -> Field {
        .scalar(types.reduce(0) { $0 | 1 << $1.rawValue })
    }

    private static let varint = wireTypes(.varint)
    private static let fixed64 = wireTypes(.fixed64)
    /// A repeated number: one record each, or packed in one length-delimited record.
    private static let repeatedVarint = wireTypes(.varint, .lengthDelimited)
    private static let repeatedFixed64 = wireTypes(.fixed64, .lengthDelimited)
    private static let bytes = wireTypes(.lengthDelimited)

    private static let shapes: [Message: [Int: Field]] = [
        .metric: [1: .message(.labelPair), 2: .message(.gauge), 3: .message(.counter), 4: .message(.summary),
                  5: .message(.gauge), 6: varint, 7: .message(.histogram)],
        .labelPair: [1: bytes, 2: bytes],
        .gauge: [1: fixed64],  // Gauge and Untyped
        .counter: [1: fixed64, 2: .message(.exemplar), 3: .message(.timestamp)],
        .summary: [1: varint, 2: fixed64, 3: .message(.quantile), 4: .message(.timestamp)],
        .quantile: [1: fixed64, 2: fixed64],
        .histogram: [1: varint, 2: fixed64, 3: .message(.bucket), 4: fixed64, 5: varint, 6: fixed64, 7: varint,
                     8: fixed64, 9: .message(.span), 10: repeatedVarint, 11: repeatedFixed64, 12: .message(.span),
                     13: repeatedVarint, 14: repeatedFixed64, 15: .message(.timestamp), 16: .message(.exemplar)],
        .bucket: [1: varint, 2: fixed64, 3: .message(.exemplar), 4: fixed64],
        .span: [1: varint, 2: varint],
        .exemplar: [1: .message(.labelPair), 2: fixed64, 3: .message(.timestamp)],
        .timestamp: [1: varint, 2: varint],
    ]

    /// `shapes` as arrays by message and field number: a lookup per field is an index,
    /// not two hashes.
    private static let fieldsByNumber: [[Field?]] = Message.allCases.map { kind in
        let shape = shapes[kind] ?? [:]
        var fields = [Field?](repeating: nil, count: (shape.keys.max() ?? 0) + 1)
        for (number, field) in shape { fields[number] = field }
        return fields
    }

    /// The top-level fields of `message`; throws when it is not a well-formed `Metric`.
    @discardableResult
    static func validate(metric message: UnsafeRawBufferPointer) throws(ProtoWire.Malformed) -> [ProtoWire.Field] {
        var fields: [ProtoWire.Field] = []
        try validate(message, .metric) { fields.append($0) }
        return fields
    }

    private static func validate(_ message: UnsafeRawBufferPointer, _ kind: Message,
                                 _ visit: (ProtoWire.Field) -> Void = { _ in }) throws(ProtoWire.Malformed) {
        let fields = fieldsByNumber[kind.rawValue]
        try ProtoWire.forEachField(of: message) { field throws(ProtoWire.Malformed) in
            visit(field)
            switch field.number >= 0 && field.number < fields.count ? fields[field.number] : nil {
            case nil:
                return
            case .scalar(let types)?:
                guard types & 1 << field.wireType.rawValue != 0 else { throw ProtoWire.Malformed(reason: "bad field type") }
            case .message(let inner)?:
                guard field.wireType == .lengthDelimited else { throw ProtoWire.Malformed(reason: "bad field type") }
                try validate(message.value(of: field), inner)
            }
        }
    }
}
