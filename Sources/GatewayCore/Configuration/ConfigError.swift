/// A configuration file that cannot be used: which file, which key (a dotted path
/// such as `tls_server_config.client_auth_type`), and why.
package struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    package enum Code: String, Sendable, Hashable {
        case unreadableFile = "unreadable_file"
        case syntax
        case unknownKey = "unknown_key"
        case duplicateKey = "duplicate_key"
        case missingKey = "missing_key"
        case wrongType = "wrong_type"
        case invalidValue = "invalid_value"
        case conflictingKeys = "conflicting_keys"
    }

    package var code: Code
    package var file: String
    /// The dotted path of the offending key; empty for the whole file.
    package var key: String
    package var reason: String

    package init(_ code: Code, file: String, key: String, reason: String) {
        self.code = code
        self.file = file
        self.key = key
        self.reason = reason
    }

    package var description: String {
        key.isEmpty ? "\(file): \(reason)" : "\(file): \(key): \(reason)"
    }
}
