/// The protobuf wire format, as much of it as the exposition needs: varints, field
/// keys, and a message's fields walked without a schema, each kept as the byte range
/// it came in, so that a field the filter does not touch is written back exactly.
enum ProtoWire {
    enum WireType: UInt8 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    /// One field of a message: where its key starts, where its value (for a
    /// length-delimited field: its payload, after the length) starts, and where it ends.
    struct Field {
        var number: Int
        var wireType: WireType
        var start: Int
        var valueStart: Int
        var end: Int
    }

    /// Why bytes are not a message: short, fixed words, for a counter label.
    struct Malformed: Error, Equatable {
        var reason: StaticString

        static func == (lhs: Malformed, rhs: Malformed) -> Bool { lhs.reason.description == rhs.reason.description }
    }

    /// Reads a varint at `index` (at most ten bytes), moving past it.
    @inline(__always)
    static func varint(_ bytes: UnsafeRawBufferPointer, at index: inout Int) throws(Malformed) -> UInt64 {
        // Most varints here (keys, lengths under 128) are one byte.
        if index < bytes.count, bytes[index] < 0x80 {
            index += 1
            return UInt64(bytes[index - 1])
        }
        return try longVarint(bytes, at: &index)
    }

    private static func longVarint(_ bytes: UnsafeRawBufferPointer, at index: inout Int) throws(Malformed) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard index < bytes.count else { throw Malformed(reason: "truncated varint") }
            guard shift < 64 else { throw Malformed(reason: "varint too long") }
            let byte = bytes[index]
            // The tenth byte holds the 64th bit only: more overflows, as Go reports.
            guard shift < 63 || byte <= 1 else { throw Malformed(reason: "varint overflows") }
            index += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    /// Every field of `message`, in order. Groups (wire types 3 and 4, deprecated and
    /// unused by the exposition) and field number 0 are refused. For a message of
    /// bounded size (a metric, at most `max_line_length`); a family is walked with
    /// a `FieldReader`, which keeps nothing.
    static func fields(of message: UnsafeRawBufferPointer) throws(Malformed) -> [Field] {
        var fields: [Field] = []
        try forEachField(of: message) { fields.append($0) }
        return fields
    }

    /// Calls `body` with each field of `message`, in order, holding none.
    static func forEachField(of message: UnsafeRawBufferPointer,
                             _ body: (Field) throws(Malformed) -> Void) throws(Malformed) {
        var reader = FieldReader(message)
        while let field = try reader.next() { try body(field) }
    }

    /// A message's fields one at a time, for a loop that runs per metric: no closure
    /// to call, nothing held.
    struct FieldReader {
        private let message: UnsafeRawBufferPointer
        private var index = 0

        /// From byte `index` of `message` on (a field's start): the fields' places are
        /// still counted from the message's start.
        init(_ message: UnsafeRawBufferPointer, from index: Int = 0) {
            self.message = message
            self.index = index
        }

        /// The next field; nil at the message's end.
        mutating func next() throws(Malformed) -> Field? {
            guard index < message.count else { return nil }
            let start = index
            let key = try varint(message, at: &index)
            guard let wireType = WireType(rawValue: UInt8(key & 7)) else { throw Malformed(reason: "unsupported wire type") }
            guard key >> 3 > 0, key >> 3 <= 536_870_911 else { throw Malformed(reason: "bad field number") }
            var valueStart = index
            switch wireType {
            case .varint:
                _ = try varint(message, at: &index)
            case .fixed64:
                index += 8
            case .fixed32:
                index += 4
            case .lengthDelimited:
                let length = try varint(message, at: &index)
                guard length <= UInt64(message.count - index) else { throw Malformed(reason: "truncated field") }
                valueStart = index
                index += Int(length)
            }
            guard index <= message.count else { throw Malformed(reason: "truncated field") }
            return Field(number: Int(key >> 3), wireType: wireType, start: start, valueStart: valueStart, end: index)
        }
    }

    static func appendVarint(_ value: UInt64, to output: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            output.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        output.append(UInt8(value))
    }

    /// The bytes `value` takes as a varint.
    static func varintLength(_ value: UInt64) -> Int {
        var value = value
        var length = 1
        while value >= 0x80 {
            value >>= 7
            length += 1
        }
        return length
    }

    /// The bytes a length-delimited field numbered `number` takes with a payload of
    /// `payload` bytes.
    static func fieldLength(_ number: Int, payload: Int) -> Int {
        varintLength(UInt64(number) << 3 | UInt64(WireType.lengthDelimited.rawValue)) + varintLength(UInt64(payload)) + payload
    }

    /// A length-delimited field: key, length, payload.
    static func appendField(_ number: Int, _ payload: some Collection<UInt8>, to output: inout [UInt8]) {
        appendVarint(UInt64(number) << 3 | UInt64(WireType.lengthDelimited.rawValue), to: &output)
        appendVarint(UInt64(payload.count), to: &output)
        output.append(contentsOf: payload)
    }

    /// A message framed as the delimited exposition frames it: its length, then it.
    static func appendDelimited(_ message: [UInt8], to output: inout [UInt8]) {
        appendVarint(UInt64(message.count), to: &output)
        output.append(contentsOf: message)
    }
}

extension UnsafeRawBufferPointer {
    /// The bytes of a field's value (a length-delimited field's payload).
    func value(of field: ProtoWire.Field) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[field.valueStart..<field.end])
    }

    /// The whole field, key included.
    func whole(_ field: ProtoWire.Field) -> UnsafeRawBufferPointer.SubSequence {
        self[field.start..<field.end]
    }
}
