/// A series' labels as relabeling sees them: sorted by name, the metric name as
/// `__name__`, and no label with an empty value (Prometheus treats `a=""` as absent).
public struct LabelSet: Hashable, Sendable {
    public private(set) var labels: [Label]

    public static let metricNameLabel: [UInt8] = Array("__name__".utf8)

    public init(labels: [Label]) {
        self.labels = labels.filter { !$0.value.isEmpty }.sorted { $0.name.lexicographicallyPrecedes($1.name) }
    }

    /// Labels already in name order, none with an empty value (relabeling's result).
    init(sortedLabels labels: [Label]) {
        self.labels = labels
    }

    public init(sample: Sample) {
        // One allocation: the labels are few, so an insertion sort in place beats
        // building, filtering and sorting copies.
        var labels: [Label] = []
        labels.reserveCapacity(sample.labels.count + 1)
        if !sample.name.isEmpty { labels.append(Label(name: Self.metricNameLabel, value: sample.name)) }
        for label in sample.labels where !label.value.isEmpty {
            var position = labels.count
            while position > 0, label.name.lexicographicallyPrecedes(labels[position - 1].name) { position -= 1 }
            labels.insert(label, at: position)
        }
        self.labels = labels
    }

    public var isEmpty: Bool { labels.isEmpty }

    public var metricName: [UInt8]? { labels.first { $0.name == Self.metricNameLabel }?.value }

    /// The value of `name`, or empty when absent.
    public func value(_ name: [UInt8]) -> [UInt8] {
        labels.first { $0.name == name }?.value ?? []
    }

    /// Sets `name`; an empty value deletes it.
    public mutating func set(_ name: [UInt8], _ value: [UInt8]) {
        guard !value.isEmpty else {
            delete(name)
            return
        }
        if let index = labels.firstIndex(where: { $0.name == name }) {
            labels[index].value = value
            return
        }
        let position = labels.firstIndex { name.lexicographicallyPrecedes($0.name) } ?? labels.count
        labels.insert(Label(name: name, value: value), at: position)
    }

    public mutating func delete(_ name: [UInt8]) {
        labels.removeAll { $0.name == name }
    }

    /// Deletes every label `shouldDelete` picks, in place (no copy of the labels).
    public mutating func delete(where shouldDelete: (Label) throws -> Bool) rethrows {
        try labels.removeAll(where: shouldDelete)
    }

    /// Whether this is the set `LabelSet(sample:)` makes of `sample`, found without
    /// making it: the same labels, none missing, none added. (A sample's label names
    /// are unique: the parser refuses a duplicate.)
    public func isSet(of sample: Sample) -> Bool {
        let expected = sample.labels.reduce(sample.name.isEmpty ? 0 : 1) { $0 + ($1.value.isEmpty ? 0 : 1) }
        guard labels.count == expected else { return false }
        return labels.allSatisfy { label in
            if label.name == Self.metricNameLabel { return label.value == sample.name }
            return sample.labels.contains { $0.name == label.name && $0.value == label.value }
        }
    }
}
