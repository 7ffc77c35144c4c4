import MetricsFilter
import Yams

/// The filter sections of scrapeguard.yml: `metric_relabel_configs` (Prometheus's
/// own schema, so rules move from a scrape config unchanged) and `filter` (how lines
/// the filter cannot read are treated).
enum FilterConfiguration {
    static let relabelKeys: Set<String> = [
        "source_labels", "separator", "target_label", "regex", "modulus", "replacement", "action",
    ]

    /// Reads the filter keys of the root mapping into a policy.
    static func read(from root: inout YAMLConfigReader) throws -> FilterPolicy {
        var policy = FilterPolicy()
        if let rules = try root.sequence("metric_relabel_configs") {
            policy.relabelRules = try relabelRules(rules, file: root.file, path: root.keyPath("metric_relabel_configs"))
        }
        if var section = try root.mapping("filter") {
            try section.refuseUnknownKeys(allowed: ["max_line_length", "invalid_lines"])
            if let length = try section.byteSize("max_line_length") {
                guard length >= 1024 else { throw section.error(.invalidValue, "max_line_length", "must be at least 1KiB") }
                policy.maximumLineLength = length
            }
            if let text = try section.string("invalid_lines") {
                guard let action = FilterPolicy.InvalidLineAction(rawValue: text) else {
                    throw section.error(.invalidValue, "invalid_lines", "expected one of drop, fail_scrape")
                }
                policy.invalidLines = action
            }
            try section.finish()
        }
        return policy
    }

    /// `metric_relabel_configs` entries, validated with Prometheus's rules and words.
    static func relabelRules(_ items: [Node], file: String, path: String) throws -> [RelabelRule] {
        try items.enumerated().map { index, node in
            let key = "\(path)[\(index)]"
            var entry = try YAMLConfigReader.mapping(node, file: file, path: key)
            try entry.refuseUnknownKeys(allowed: relabelKeys)
            var fields = RelabelRule.Fields()
            fields.action = try entry.string("action")
            fields.sourceLabels = try entry.stringList("source_labels")
            fields.separator = try entry.string("separator")
            fields.targetLabel = try entry.string("target_label")
            fields.regex = try entry.string("regex")
            fields.replacement = try entry.string("replacement")
            if entry.has("modulus") {
                guard let modulus = try entry.unsignedInt("modulus") else {
                    throw entry.error(.wrongType, "modulus", "expected a non-negative integer")
                }
                fields.modulus = modulus
            }
            try entry.finish()
            do {
                return try RelabelRule(fields)
            } catch let error as RelabelRule.Invalid {
                throw ConfigError(.invalidValue, file: file, key: key, reason: error.message)
            }
        }
    }
}
