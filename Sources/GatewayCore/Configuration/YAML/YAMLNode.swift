/// One node of a configuration file's YAML document, as `YAMLComposer` builds it from
/// libyaml's events: a scalar, a list, or a mapping whose keys are strings and appear
/// once each (the composer refuses anything else, with the key's path).
///
/// Scalars keep their text and whether they were written plain (unquoted, untagged):
/// only a plain scalar reads as a boolean, an integer or null, as YAML 1.1 resolves
/// them for Go's yaml.v2, which Prometheus and exporter-toolkit read their files with.
/// A quoted `"true"` stays a string.
enum YAMLNode: Sendable {
    case scalar(YAMLScalar)
    case sequence([YAMLNode])
    case mapping([(key: String, value: YAMLNode)])

    var scalar: YAMLScalar? {
        if case .scalar(let scalar) = self { return scalar }
        return nil
    }

    var sequence: [YAMLNode]? {
        if case .sequence(let items) = self { return items }
        return nil
    }

    var mapping: [(key: String, value: YAMLNode)]? {
        if case .mapping(let entries) = self { return entries }
        return nil
    }

    /// A scalar's text, whatever its style.
    var string: String? { scalar?.string }

    var bool: Bool? { scalar?.bool }

    var int: Int? { scalar?.int }

    /// An absent value: `key:` alone, `~` or `null` (plain).
    var isNull: Bool { scalar?.isNull ?? false }

    /// The value under `key`, when this is a mapping that has it.
    subscript(key: String) -> YAMLNode? {
        mapping?.first { $0.key == key }?.value
    }
}

struct YAMLScalar: Sendable, Equatable {
    /// The scalar's value, escapes and folding already applied by libyaml.
    var string: String
    /// Written without quotes, block style or an explicit tag.
    var isPlain: Bool

    var isNull: Bool {
        isPlain && ["", "~", "null", "Null", "NULL"].contains(string)
    }

    /// YAML 1.1's booleans, plain only: true/false, yes/no, on/off in the three
    /// spellings each (`true`, `True`, `TRUE`).
    var bool: Bool? {
        guard isPlain else { return nil }
        switch string {
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return false
        default: return nil
        }
    }

    /// A plain integer as yaml.v2 resolves one: underscores removed, then Go's
    /// `strconv.ParseInt(text, 0, 64)`: an optional sign, then decimal, `0x`
    /// hexadecimal, `0b` binary, `0o` or a leading `0` octal. Nil when it is not one
    /// or does not fit in 64 bits.
    var int: Int? {
        guard let (negative, magnitude) = integerParts() else { return nil }
        if negative {
            guard magnitude <= UInt64(Int.max) + 1 else { return nil }
            return magnitude == UInt64(Int.max) + 1 ? Int.min : -Int(magnitude)
        }
        guard magnitude <= UInt64(Int.max) else { return nil }
        return Int(magnitude)
    }

    /// A plain non-negative integer up to 2^64 - 1, as yaml.v2 fills a `uint64` (the
    /// relabel `modulus`): the same syntax as `int`, `010` is 8; a negative number is
    /// refused (`-0` is 0, as yaml.v2 takes it).
    var uint64: UInt64? {
        guard let (negative, magnitude) = integerParts(), !negative || magnitude == 0 else { return nil }
        return magnitude
    }

    private func integerParts() -> (negative: Bool, magnitude: UInt64)? {
        guard isPlain, let first = string.first, first.isASCII, first.isNumber || first == "-" || first == "+" else {
            return nil
        }
        var digits = Substring(string.filter { $0 != "_" })
        var negative = false
        if let sign = digits.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        var radix = 10
        let prefix = digits.prefix(2).lowercased()
        if prefix == "0x" || prefix == "0b" || prefix == "0o" {
            radix = prefix == "0x" ? 16 : prefix == "0b" ? 2 : 8
            digits = digits.dropFirst(2)
        } else if digits.count > 1, digits.first == "0" {
            radix = 8
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isHexDigit }),
              let magnitude = UInt64(digits, radix: radix) else { return nil }
        return (negative, magnitude)
    }
}
