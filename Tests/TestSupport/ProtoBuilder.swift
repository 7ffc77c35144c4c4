/// Builds protobuf exposition bytes by hand for tests, from client_model's field
/// numbers, independently of the filter's own codec: a `MetricFamily` is a list of
/// fields, each a number and its encoded value.
public enum ProtoBuilder {
    public static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var bytes: [UInt8] = []
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
        return bytes
    }

    /// A length-delimited field.
    public static func field(_ number: Int, _ payload: [UInt8]) -> [UInt8] {
        varint(UInt64(number) << 3 | 2) + varint(UInt64(payload.count)) + payload
    }

    public static func field(_ number: Int, _ text: String) -> [UInt8] {
        field(number, Array(text.utf8))
    }

    public static func varintField(_ number: Int, _ value: UInt64) -> [UInt8] {
        varint(UInt64(number) << 3) + varint(value)
    }

    /// A `double` field (wire type 1, little-endian).
    public static func doubleField(_ number: Int, _ value: Double) -> [UInt8] {
        var bits = value.bitPattern
        var bytes = varint(UInt64(number) << 3 | 1)
        for _ in 0..<8 {
            bytes.append(UInt8(truncatingIfNeeded: bits))
            bits >>= 8
        }
        return bytes
    }

    public static func labelPair(_ name: String, _ value: String) -> [UInt8] {
        field(1, name) + field(2, value)
    }

    /// `Metric`: labels (field 1), then the given value fields as they are.
    public static func metric(_ labels: [(String, String)], _ rest: [UInt8]) -> [UInt8] {
        labels.flatMap { field(1, labelPair($0.0, $0.1)) } + rest
    }

    /// `Counter` in field 3 of a metric, with an exemplar (field 2) when given.
    public static func counter(_ value: Double, exemplar: [UInt8]? = nil) -> [UInt8] {
        field(3, doubleField(1, value) + (exemplar.map { field(2, $0) } ?? []))
    }

    /// `Gauge` in field 2 of a metric.
    public static func gauge(_ value: Double) -> [UInt8] {
        field(2, doubleField(1, value))
    }

    /// `Exemplar`: labels, value.
    public static func exemplar(_ labels: [(String, String)], _ value: Double) -> [UInt8] {
        labels.flatMap { field(1, labelPair($0.0, $0.1)) } + doubleField(2, value)
    }

    /// `MetricFamily`: name, help, type (0 counter, 1 gauge, 2 summary, 3 untyped,
    /// 4 histogram), metrics, and any extra fields after them.
    public static func family(_ name: String, type: UInt64, help: String? = nil, metrics: [[UInt8]],
                              extra: [UInt8] = []) -> [UInt8] {
        field(1, name) + (help.map { field(2, $0) } ?? []) + varintField(3, type) + metrics.flatMap { field(4, $0) } + extra
    }

    /// Messages framed as the delimited exposition frames them.
    public static func delimited(_ messages: [[UInt8]]) -> [UInt8] {
        messages.flatMap { varint(UInt64($0.count)) + $0 }
    }
}
