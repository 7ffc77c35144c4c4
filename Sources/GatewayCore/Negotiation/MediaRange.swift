/// One clause of an `Accept` or a `Content-Type`: `type/subtype;name=value;...`,
/// names lowercased, values unquoted. Enough of RFC 9110 for exposition formats.
struct MediaRange: Equatable {
    var type: String
    var parameters: [(name: String, value: String)]

    static func == (lhs: MediaRange, rhs: MediaRange) -> Bool {
        lhs.type == rhs.type && lhs.parameters.elementsEqual(rhs.parameters) { $0 == $1 }
    }

    init(type: String, parameters: [(name: String, value: String)] = []) {
        self.type = type
        self.parameters = parameters
    }

    /// Parses one clause; nil when it has no `type/subtype`.
    init?(_ text: Substring) {
        let parts = text.split(separator: ";", omittingEmptySubsequences: false)
        let type = parts[0].trimmingSpaces.lowercased()
        guard type.split(separator: "/").count == 2 else { return nil }
        self.type = type
        parameters = parts.dropFirst().compactMap { part in
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { return nil }
            var value = pair[1].trimmingSpaces
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            }
            return (pair[0].trimmingSpaces.lowercased(), value)
        }
    }

    /// Every clause of a header value, in order; clauses that do not parse are left out.
    static func list(_ header: String) -> [MediaRange] {
        header.split(separator: ",").compactMap { MediaRange($0) }
    }

    func parameter(_ name: String) -> String? {
        parameters.first { $0.name == name }?.value
    }

    /// The `q` parameter, 1 when absent or unreadable.
    var quality: Double {
        parameter("q").flatMap(Double.init) ?? 1
    }

    var description: String {
        ([type] + parameters.map { "\($0.name)=\($0.value)" }).joined(separator: ";")
    }
}
