import GatewayTLS

/// A strict reader over one YAML mapping of a configuration file. Every key that is
/// read is remembered, and `finish()` refuses whatever is left: an unknown key is an
/// error, as with Go's `yaml.UnmarshalStrict`, never silently ignored.
struct YAMLConfigReader {
    let file: String
    let path: String
    private let entries: [(key: String, value: YAMLNode)]
    private var consumed: Set<String> = []

    /// Parses a whole file; an empty document reads as an empty mapping.
    static func load(file: String, text: String) throws -> YAMLConfigReader {
        let root: YAMLNode?
        do {
            root = try YAMLComposer.compose(text)
        } catch {
            switch error.kind {
            case .syntax:
                throw ConfigError(.syntax, file: file, key: error.path, reason: "invalid YAML: \(error.reason)")
            case .duplicateKey:
                throw ConfigError(.duplicateKey, file: file, key: error.path, reason: error.reason)
            case .nonStringKey:
                throw ConfigError(.wrongType, file: file, key: error.path, reason: error.reason)
            case .structure:
                throw ConfigError(.syntax, file: file, key: error.path, reason: "invalid YAML: \(error.reason)")
            }
        }
        guard let root else {
            return YAMLConfigReader(file: file, path: "", entries: [])
        }
        return try YAMLConfigReader(file: file, path: "", node: root)
    }

    static func loadFile(_ file: String) throws -> YAMLConfigReader {
        let text: String
        do {
            text = try FileReading.readText(file)
        } catch {
            throw ConfigError(.unreadableFile, file: file, key: "", reason: "cannot read the file: \(error.reason)")
        }
        return try load(file: file, text: text)
    }

    private init(file: String, path: String, entries: [(key: String, value: YAMLNode)]) {
        self.file = file
        self.path = path
        self.entries = entries
    }

    /// A reader over a mapping found elsewhere (a list item).
    static func mapping(_ node: YAMLNode, file: String, path: String) throws -> YAMLConfigReader {
        try YAMLConfigReader(file: file, path: path, node: node)
    }

    /// Keys are strings and unique: the composer refused the file otherwise.
    private init(file: String, path: String, node: YAMLNode) throws {
        guard let entries = node.mapping else {
            throw ConfigError(.wrongType, file: file, key: path, reason: "must be a mapping")
        }
        self.init(file: file, path: path, entries: entries)
    }

    /// Refuses, before anything else is checked, a key that this mapping never has:
    /// a typo is reported as itself, not as whatever its absence causes.
    func refuseUnknownKeys(allowed: Set<String>) throws {
        if let unknown = entries.first(where: { !allowed.contains($0.key) }) {
            throw error(.unknownKey, unknown.key, "unknown key")
        }
    }

    func keyPath(_ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    func error(_ code: ConfigError.Code, _ key: String, _ reason: String) -> ConfigError {
        ConfigError(code, file: file, key: keyPath(key), reason: reason)
    }

    var isEmpty: Bool { entries.isEmpty }

    func has(_ key: String) -> Bool {
        entries.contains { $0.key == key && !$0.value.isNull }
    }

    /// The keys present, in file order.
    var keys: [String] { entries.map(\.key) }

    private mutating func node(_ key: String) -> YAMLNode? {
        consumed.insert(key)
        guard let value = entries.first(where: { $0.key == key })?.value, !value.isNull else { return nil }
        return value
    }

    mutating func string(_ key: String) throws -> String? {
        guard let value = node(key) else { return nil }
        guard let scalar = value.scalar else {
            throw error(.wrongType, key, "must be a string")
        }
        return scalar.string
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let value = node(key) else { return nil }
        guard let bool = value.bool else {
            throw error(.wrongType, key, "must be true or false")
        }
        return bool
    }

    mutating func int(_ key: String) throws -> Int? {
        guard let value = node(key) else { return nil }
        guard let int = value.int else {
            throw error(.wrongType, key, "must be an integer")
        }
        return int
    }

    mutating func sequence(_ key: String) throws -> [YAMLNode]? {
        guard let value = node(key) else { return nil }
        guard let sequence = value.sequence else {
            throw error(.wrongType, key, "expected a list")
        }
        return Array(sequence)
    }

    /// A plain (unquoted) non-negative integer, as yaml.v2 reads one into a `uint64`
    /// (`YAMLScalar.uint64`: `010` is 8, `0x10` is 16, as Prometheus reads them).
    mutating func unsignedInt(_ key: String) throws -> UInt64? {
        guard let value = node(key) else { return nil }
        return value.scalar?.uint64
    }

    mutating func stringList(_ key: String) throws -> [String]? {
        guard let value = node(key) else { return nil }
        guard let sequence = value.sequence else {
            throw error(.wrongType, key, "expected a list of strings")
        }
        return try sequence.enumerated().map { index, item in
            guard let scalar = item.scalar else {
                throw ConfigError(.wrongType, file: file, key: "\(keyPath(key))[\(index)]", reason: "must be a string")
            }
            return scalar.string
        }
    }

    /// A Prometheus duration (`1m30s`, `500ms`).
    mutating func duration(_ key: String) throws -> Duration? {
        guard let text = try string(key) else { return nil }
        guard let duration = PrometheusDuration.parse(text) else {
            throw error(.invalidValue, key, "invalid duration \"\(text)\" (use e.g. 10s, 1m30s, 500ms)")
        }
        return duration
    }

    /// A byte size: a plain number of bytes or a number with a unit (`64MiB`, `10MB`).
    mutating func byteSize(_ key: String) throws -> Int? {
        guard let value = node(key) else { return nil }
        if let int = value.int { return int }
        guard let text = value.scalar?.string, let size = ByteSize.parse(text) else {
            throw error(.invalidValue, key, "invalid size (use bytes, or e.g. 512KiB, 64MiB, 1GiB)")
        }
        return size
    }

    mutating func mapping(_ key: String) throws -> YAMLConfigReader? {
        guard let value = node(key) else { return nil }
        return try YAMLConfigReader(file: file, path: keyPath(key), node: value)
    }

    /// Marks every key as read: for mappings whose keys are data (user names).
    mutating func consumeAll() {
        for entry in entries { consumed.insert(entry.key) }
    }

    /// The raw entries, for mappings whose keys are data.
    var rawEntries: [(key: String, value: YAMLNode)] { entries }

    /// Refuses any key that was not read.
    func finish() throws {
        if let unknown = entries.first(where: { !consumed.contains($0.key) }) {
            throw error(.unknownKey, unknown.key, "unknown key")
        }
    }
}
