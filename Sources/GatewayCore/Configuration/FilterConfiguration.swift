import GatewayTLS
import MetricsFilter

/// The filter sections of scrapeguard.yml: `metric_relabel_configs` (Prometheus's
/// own schema, so rules move from a scrape config unchanged), `relabel_semantics`
/// (`prometheus3`, the default, or `prometheus2`: how regexes are anchored and which
/// label names rules may use), `pii`, `limits` and `filter` (how lines the filter
/// cannot read are treated).
enum FilterConfiguration {
    static let relabelKeys: Set<String> = [
        "source_labels", "separator", "target_label", "regex", "modulus", "replacement", "action",
    ]

    /// Reads the filter keys of the root mapping into a policy; the files it reads on
    /// the way (the PII hash key) are added to `files`.
    static func read(from root: inout YAMLConfigReader, files: inout [String]) throws -> FilterPolicy {
        var policy = FilterPolicy()
        var semantics = RelabelSemantics.prometheus3
        if let text = try root.string("relabel_semantics") {
            guard let chosen = RelabelSemantics(rawValue: text) else {
                throw root.error(.invalidValue, "relabel_semantics", "expected one of prometheus3, prometheus2")
            }
            semantics = chosen
        }
        if let rules = try root.sequence("metric_relabel_configs") {
            policy.relabelRules = try relabelRules(rules, file: root.file, path: root.keyPath("metric_relabel_configs"),
                                                   semantics: semantics)
        }
        if var section = try root.mapping("pii") {
            policy.pii = try pii(&section, semantics: semantics)
            if let path = try section.string("hash_key_file") {
                files.append(PathResolution.resolve(path, against: PathResolution.folder(of: section.file)))
            }
            try section.finish()
        }
        if var section = try root.mapping("limits") {
            policy.limits = try limits(&section)
            try section.finish()
        }
        if var section = try root.mapping("filter") {
            try section.refuseUnknownKeys(allowed: ["max_line_length", "max_family_length", "invalid_lines", "memo_budget"])
            if let length = try section.byteSize("max_line_length") {
                guard length >= 1024 else { throw section.error(.invalidValue, "max_line_length", "must be at least 1KiB") }
                policy.maximumLineLength = length
            }
            if let length = try section.byteSize("max_family_length") {
                guard (1024...(1 << 30)).contains(length) else {
                    throw section.error(.invalidValue, "max_family_length", "must be between 1KiB and 1GiB")
                }
                policy.maximumFamilyLength = length
            }
            if let budget = try section.byteSize("memo_budget") {
                guard budget == 0 || (64 << 10...1 << 30).contains(budget) else {
                    throw section.error(.invalidValue, "memo_budget", "must be 0 (off) or between 64KiB and 1GiB")
                }
                policy.memoBudget = budget
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

    private static func action(_ reader: inout YAMLConfigReader) throws -> PIIAction {
        guard let text = try reader.string("action") else {
            throw reader.error(.missingKey, "action", "required: one of \(PIIAction.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let action = PIIAction(rawValue: text) else {
            throw reader.error(.invalidValue, "action", "expected one of \(PIIAction.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return action
    }

    /// The `pii` section: rules by label name, value detectors, the marker and the
    /// HMAC key file (relative to the config file's folder, at least 16 bytes).
    static func pii(_ section: inout YAMLConfigReader, semantics: RelabelSemantics = .prometheus3) throws -> PIIPolicy {
        try section.refuseUnknownKeys(allowed: ["hash_key_file", "marker", "labels", "detectors", "detector_exempt_labels"])
        var policy = PIIPolicy()
        if let marker = try section.string("marker") {
            guard !marker.isEmpty, !marker.contains("\n") else { throw section.error(.invalidValue, "marker", "must be a non-empty line") }
            policy.marker = Array(marker.utf8)
        }
        if let exempt = try section.stringList("detector_exempt_labels") {
            policy.detectorExemptLabels = Set(exempt.map { Array($0.utf8) })
        }
        for (index, node) in (try section.sequence("labels") ?? []).enumerated() {
            var entry = try YAMLConfigReader.mapping(node, file: section.file, path: "\(section.keyPath("labels"))[\(index)]")
            try entry.refuseUnknownKeys(allowed: ["name", "names", "name_regex", "action"])
            let names = try entry.stringList("names") ?? []
            var regex: RelabelRegex?
            if let pattern = try entry.string("name_regex") {
                do { regex = try RelabelRegex(pattern, semantics: semantics) } catch {
                    throw entry.error(.invalidValue, "name_regex", error.message)
                }
            }
            guard !names.isEmpty || regex != nil else {
                throw entry.error(.missingKey, "names", "a rule needs names or name_regex")
            }
            let action = try action(&entry)
            let name = try entry.string("name") ?? (names.first ?? "labels[\(index)]")
            try entry.finish()
            policy.labelRules.append(.init(name: name, labelNames: names, labelRegex: regex, action: action))
        }
        for (index, node) in (try section.sequence("detectors") ?? []).enumerated() {
            var entry = try YAMLConfigReader.mapping(node, file: section.file, path: "\(section.keyPath("detectors"))[\(index)]")
            try entry.refuseUnknownKeys(allowed: ["name", "detector", "action"])
            guard let text = try entry.string("detector"), let detector = PIIDetector(rawValue: text) else {
                throw entry.error(.invalidValue, "detector", "expected one of \(PIIDetector.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let action = try action(&entry)
            let name = try entry.string("name") ?? text
            try entry.finish()
            policy.detectorRules.append(.init(name: name, detector: detector, action: action))
        }
        let hashes = policy.labelRules.contains { $0.action == .hash } || policy.detectorRules.contains { $0.action == .hash }
        if let path = try section.string("hash_key_file") {
            let resolved = PathResolution.resolve(path, against: PathResolution.folder(of: section.file))
            let key: [UInt8]
            do {
                key = Array(try FileReading.readText(resolved).utf8)
            } catch {
                throw section.error(.invalidValue, "hash_key_file", "cannot read \(resolved): \(error.reason)")
            }
            guard key.count >= 16 else {
                throw section.error(.invalidValue, "hash_key_file", "the key must be at least 16 bytes (e.g. openssl rand -hex 32)")
            }
            policy.hashKey = key
        } else if hashes {
            throw section.error(.missingKey, "hash_key_file", "a hash action needs a key file")
        }
        return policy
    }

    /// The `limits` section.
    static func limits(_ section: inout YAMLConfigReader) throws -> SeriesLimits {
        try section.refuseUnknownKeys(allowed: [
            "label_limit", "label_value_length_limit", "sample_limit", "series_per_metric", "values_per_label", "series_idle_timeout",
        ])
        var limits = SeriesLimits()
        func positive(_ key: String, _ reader: inout YAMLConfigReader) throws -> Int? {
            guard let value = try reader.int(key) else { return nil }
            guard value >= 1 else { throw reader.error(.invalidValue, key, "must be at least 1") }
            return value
        }
        limits.labelLimit = try positive("label_limit", &section)
        limits.labelValueLengthLimit = try positive("label_value_length_limit", &section)
        limits.sampleLimit = try positive("sample_limit", &section)
        limits.seriesPerMetric = try positive("series_per_metric", &section)
        limits.valuesPerLabel = try positive("values_per_label", &section)
        if let timeout = try section.duration("series_idle_timeout") {
            guard timeout > .zero else { throw section.error(.invalidValue, "series_idle_timeout", "must be greater than 0") }
            limits.idleTimeout = timeout
        }
        return limits
    }

    /// `metric_relabel_configs` entries, validated with Prometheus's rules and words.
    static func relabelRules(_ items: [YAMLNode], file: String, path: String,
                             semantics: RelabelSemantics = .prometheus3) throws -> [RelabelRule] {
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
                return try RelabelRule(fields, semantics: semantics)
            } catch let error as RelabelRule.Invalid {
                throw ConfigError(.invalidValue, file: file, key: key, reason: error.message)
            }
        }
    }
}
