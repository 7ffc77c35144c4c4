import CYAML

/// Why a configuration file's YAML was refused before any key was read.
struct YAMLCompositionError: Error, Equatable {
    enum Kind: Equatable {
        /// libyaml's scanner or parser refused the text.
        case syntax
        /// A mapping has the same key twice.
        case duplicateKey
        /// A mapping key that is not a string (a list or a mapping as a key).
        case nonStringKey
        /// An alias to an anchor not defined before it, the file nested too deep, or a
        /// second document.
        case structure
    }

    var kind: Kind
    /// The dotted path of the key concerned (`tls_server_config.cert_file`,
    /// `metric_relabel_configs[2]`); empty for the document itself.
    var path: String
    var reason: String
}

/// Builds a `YAMLNode` tree from libyaml's event parser (Debian's libyaml-dev, the C
/// parser Yams and PyYAML wrap). The only type that calls libyaml.
///
/// What it does beyond libyaml: anchors and aliases are resolved (an alias is the
/// anchored node again; no merge keys: `<<` stays an ordinary key, which the strict
/// reader then refuses); duplicate keys are refused with their path, as Go's yaml
/// does; a file holds one document; nesting is bounded, so that no file can exhaust
/// the stack of whatever walks the tree.
enum YAMLComposer {
    /// Deeper than any configuration this project reads (four levels).
    static let maximumDepth = 64

    /// The document in `text`, or nil for a stream with no document (an empty file).
    static func compose(_ text: String) throws(YAMLCompositionError) -> YAMLNode? {
        var bytes = Array(text.utf8)
        // libyaml reads through a pointer for the whole parse.
        return try bytes.withUnsafeMutableBufferPointer { (input) throws(YAMLCompositionError) -> YAMLNode? in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else {
                throw YAMLCompositionError(kind: .syntax, path: "", reason: "cannot start the YAML parser (out of memory)")
            }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_input_string(&parser, input.baseAddress, input.count)
            var builder = TreeBuilder()
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    throw YAMLCompositionError(kind: .syntax, path: "",
                                               reason: describeError(of: parser, input: UnsafeBufferPointer(input)))
                }
                defer { yaml_event_delete(&event) }
                if event.type == YAML_STREAM_END_EVENT { break }
                try builder.take(event, line: Int(event.start_mark.line) + 1)
            }
            return builder.root
        }
    }

    private static func describeError(of parser: yaml_parser_t, input: UnsafeBufferPointer<UInt8>) -> String {
        let problem = parser.problem.map { String(cString: $0) } ?? "unreadable YAML"
        var line = Int(parser.problem_mark.line) + 1
        var column = Int(parser.problem_mark.column) + 1
        if parser.error == YAML_READER_ERROR {
            // The reader (a control character, bad UTF-8) gives a byte offset, no mark.
            let offset = min(Int(parser.problem_offset), input.count)
            let before = input[..<offset]
            line = before.count(where: { $0 == UInt8(ascii: "\n") }) + 1
            column = offset - (before.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0) + 1
        }
        var text = "\(problem) at line \(line), column \(column)"
        if let context = parser.context {
            text += " (\(String(cString: context)))"
        }
        return text
    }

    /// The tree under construction: a stack of the collections still open.
    private struct TreeBuilder {
        private enum Open {
            case sequence(items: [YAMLNode], anchor: String?, path: String)
            case mapping(entries: [(key: String, value: YAMLNode)], pendingKey: String?, anchor: String?, path: String)
        }

        private(set) var root: YAMLNode?
        private var open: [Open] = []
        private var anchors: [String: YAMLNode] = [:]
        private var documents = 0

        mutating func take(_ event: yaml_event_t, line: Int) throws(YAMLCompositionError) {
            switch event.type {
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                guard documents == 1 else {
                    throw YAMLCompositionError(kind: .structure, path: "",
                                               reason: "a second YAML document at line \(line): the file must hold one")
                }
            case YAML_SCALAR_EVENT:
                let scalar = event.data.scalar
                let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
                let node = YAMLNode.scalar(YAMLScalar(string: text,
                                                      isPlain: scalar.style == YAML_PLAIN_SCALAR_STYLE && scalar.plain_implicit == 1))
                try add(node, anchor: Self.string(scalar.anchor))
            case YAML_ALIAS_EVENT:
                let name = Self.string(event.data.alias.anchor) ?? ""
                guard let node = anchors[name] else {
                    throw YAMLCompositionError(kind: .structure, path: childPath(),
                                               reason: "alias *\(name) names no anchor defined before it")
                }
                try add(node, anchor: nil)
            case YAML_SEQUENCE_START_EVENT:
                try push(.sequence(items: [], anchor: Self.string(event.data.sequence_start.anchor), path: childPath()))
            case YAML_MAPPING_START_EVENT:
                try push(.mapping(entries: [], pendingKey: nil, anchor: Self.string(event.data.mapping_start.anchor),
                                  path: childPath()))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                switch open.removeLast() {
                case .sequence(let items, let anchor, _):
                    try add(.sequence(items), anchor: anchor)
                case .mapping(let entries, _, let anchor, _):
                    try add(.mapping(entries), anchor: anchor)
                }
            default:
                break  // stream start, document end: nothing to build
            }
        }

        /// The path of the node about to be added to the innermost open collection.
        private func childPath() -> String {
            switch open.last {
            case nil:
                return ""
            case .sequence(let items, _, let path):
                return "\(path)[\(items.count)]"
            case .mapping(_, let pendingKey, _, let path):
                guard let key = pendingKey else { return path }
                return path.isEmpty ? key : "\(path).\(key)"
            }
        }

        private mutating func push(_ collection: Open) throws(YAMLCompositionError) {
            if case .mapping(_, nil, _, let path)? = open.last {
                throw YAMLCompositionError(kind: .nonStringKey, path: path, reason: "keys must be strings")
            }
            guard open.count < maximumDepth else {
                throw YAMLCompositionError(kind: .structure, path: childPath(),
                                           reason: "nested deeper than \(maximumDepth) levels")
            }
            open.append(collection)
        }

        private mutating func add(_ node: YAMLNode, anchor: String?) throws(YAMLCompositionError) {
            if let anchor { anchors[anchor] = node }
            guard let innermost = open.popLast() else {
                root = node
                return
            }
            switch innermost {
            case .sequence(var items, let anchor, let path):
                items.append(node)
                open.append(.sequence(items: items, anchor: anchor, path: path))
            case .mapping(let entries, nil, let anchor, let path):
                guard let key = node.scalar?.string else {
                    throw YAMLCompositionError(kind: .nonStringKey, path: path, reason: "keys must be strings")
                }
                if entries.contains(where: { $0.key == key }) {
                    throw YAMLCompositionError(kind: .duplicateKey, path: path.isEmpty ? key : "\(path).\(key)",
                                               reason: "duplicate key")
                }
                open.append(.mapping(entries: entries, pendingKey: key, anchor: anchor, path: path))
            case .mapping(var entries, let key?, let anchor, let path):
                entries.append((key, node))
                open.append(.mapping(entries: entries, pendingKey: nil, anchor: anchor, path: path))
            }
        }

        private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            pointer.map { String(cString: $0) }
        }
    }
}
