/// A series' labels while relabel rules run, as Prometheus's `labels.Builder` holds
/// them (sorted by name, the metric name as `__name__`, no label with an empty value),
/// but as ranges of one byte buffer that is kept from series to series: a rule reads
/// and writes names and values without allocating.
///
/// The buffer only grows while a series is relabeled, so a range once written stays
/// valid until the next `load`; a new value is appended, never written over an old
/// one. Bytes handed to `set` must not point into this buffer (they are the rule's
/// own, or the relabeler's scratch); a value already here is moved by its range
/// (`set(_:valueAt:)`).
struct RelabelLabels {
    struct Slot: Equatable {
        var name: Range<Int>
        var value: Range<Int>
    }

    private(set) var bytes: [UInt8] = []
    /// In name order.
    private(set) var slots: [Slot] = []
    /// The slots as loaded, to tell whether the rules changed anything.
    private var loaded: [Slot] = []
    /// With `beginLoading(line:metricName:)`: the buffer's first `lineCount` bytes are
    /// the line, a plain sample (see `isPlainLabel`).
    private(set) var lineCount = 0

    init() {
        bytes.reserveCapacity(1024)
        slots.reserveCapacity(16)
        loaded.reserveCapacity(16)
    }

    var isEmpty: Bool { slots.isEmpty }

    /// Starts a series read in place from `line`, in one copy: its metric name and
    /// labels are then given as ranges of the line (`addLoaded(nameAt:valueAt:)`).
    mutating func beginLoading(line: UnsafeBufferPointer<UInt8>, metricName name: Range<Int>) {
        bytes.removeAll(keepingCapacity: true)
        slots.removeAll(keepingCapacity: true)
        bytes.append(contentsOf: line)
        lineCount = line.count
        if !name.isEmpty {
            let nameLabel = LabelSet.metricNameLabel.withUnsafeBufferPointer { append($0) }
            slots.append(Slot(name: nameLabel, value: name))
        }
    }

    /// A label of the line given to `beginLoading(line:metricName:)`, by its ranges
    /// there (names are distinct); an empty value is no label.
    mutating func addLoaded(nameAt name: Range<Int>, valueAt value: Range<Int>) {
        guard !value.isEmpty else { return }
        let slot = Slot(name: name, value: value)
        var position = slots.count
        while position > 0, precedes(slot.name, slots[position - 1].name) { position -= 1 }
        slots.insert(slot, at: position)
    }

    mutating func endLoading() {
        loaded.removeAll(keepingCapacity: true)
        loaded.append(contentsOf: slots)
    }

    /// Whether a slot is one of the plain line's labels as it came, `name="value"`
    /// in the line: its name a legacy name and its value without anything to escape
    /// (`PlainSample` reads only such lines), written as the line has it.
    func isPlainLabel(_ slot: Slot) -> Bool {
        slot.value.upperBound < lineCount && slot.value.lowerBound == slot.name.upperBound + 2
    }

    /// Whether `range` is in the plain line's own bytes. A label name there is one of
    /// the line's label names, a legacy name: rules copy the names they set.
    func isInLine(_ range: Range<Int>) -> Bool {
        range.upperBound <= lineCount
    }

    /// Whether the labels are the ones loaded: the same names with the same values.
    var isUnchanged: Bool {
        // Both lists are in name order, so they are equal slot by slot.
        guard slots.count == loaded.count else { return false }
        for (current, original) in zip(slots, loaded) where current != original {
            guard same(current.name, original.name), same(current.value, original.value) else { return false }
        }
        return true
    }

    /// Calls `body` with the bytes of `range`; valid only inside it.
    func withBytes<Result>(_ range: Range<Int>, _ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        try bytes.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[range])) }
    }

    /// The slot of the label `name`, if there is one.
    func index(of name: UnsafeBufferPointer<UInt8>) -> Int? {
        bytes.withUnsafeBufferPointer { buffer in
            slots.firstIndex { ExpositionTokens.equal(UnsafeBufferPointer(rebasing: buffer[$0.name]), name) }
        }
    }

    /// The value of `name`, empty when it is absent.
    func valueRange(of name: UnsafeBufferPointer<UInt8>) -> Range<Int> {
        index(of: name).map { slots[$0].value } ?? 0..<0
    }

    /// The metric name's value, when `__name__` is set.
    var metricName: Range<Int>? {
        LabelSet.metricNameLabel.withUnsafeBufferPointer { index(of: $0) }.map { slots[$0].value }
    }

    /// Sets `name` to a copy of `value`; an empty value deletes it. Neither may point
    /// into this buffer.
    mutating func set(_ name: UnsafeBufferPointer<UInt8>, copying value: UnsafeBufferPointer<UInt8>) {
        assert(!isInBuffer(name) && !isInBuffer(value), "set(_:copying:) takes bytes from outside the buffer")
        guard !value.isEmpty else {
            delete(name)
            return
        }
        if let index = index(of: name) {
            if withBytes(slots[index].value, { ExpositionTokens.equal($0, value) }) { return }
            slots[index].value = append(value)
            return
        }
        insert(Slot(name: append(name), value: append(value)))
    }

    /// Sets `name` (not in this buffer) to a value already in it.
    mutating func set(_ name: UnsafeBufferPointer<UInt8>, valueAt value: Range<Int>) {
        guard !value.isEmpty else {
            delete(name)
            return
        }
        if let index = index(of: name) {
            slots[index].value = value
            return
        }
        insert(Slot(name: append(name), value: value))
    }

    /// Sets the value of the label at `index` to a copy of `value` (not in this
    /// buffer); an empty value deletes it.
    mutating func setValue(at index: Int, copying value: UnsafeBufferPointer<UInt8>) {
        assert(!isInBuffer(value), "setValue(at:copying:) takes bytes from outside the buffer")
        guard !value.isEmpty else {
            slots.remove(at: index)
            return
        }
        if withBytes(slots[index].value, { ExpositionTokens.equal($0, value) }) { return }
        slots[index].value = append(value)
    }

    mutating func delete(_ name: UnsafeBufferPointer<UInt8>) {
        if let index = index(of: name) { slots.remove(at: index) }
    }

    mutating func delete(at index: Int) {
        slots.remove(at: index)
    }

    /// Deletes every slot `shouldDelete` picks (by its name's bytes), in place.
    mutating func delete(where shouldDelete: (UnsafeBufferPointer<UInt8>) -> Bool) {
        let bytes = self.bytes
        bytes.withUnsafeBufferPointer { buffer in
            slots.removeAll { shouldDelete(UnsafeBufferPointer(rebasing: buffer[$0.name])) }
        }
    }

    /// Whether `part` points into `bytes` (which an append may move): for asserts.
    private func isInBuffer(_ part: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let start = part.baseAddress, !part.isEmpty else { return false }
        return bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return false }
            return start >= base && start < base + buffer.count
        }
    }

    private mutating func insert(_ slot: Slot) {
        let position = slots.firstIndex { precedes(slot.name, $0.name) } ?? slots.count
        slots.insert(slot, at: position)
    }

    private mutating func append(_ part: UnsafeBufferPointer<UInt8>) -> Range<Int> {
        let start = bytes.count
        bytes.append(contentsOf: part)
        return start..<bytes.count
    }

    private func precedes(_ lhs: Range<Int>, _ rhs: Range<Int>) -> Bool {
        bytes.withUnsafeBufferPointer {
            ExpositionTokens.precedes(UnsafeBufferPointer(rebasing: $0[lhs]), UnsafeBufferPointer(rebasing: $0[rhs]))
        }
    }

    private func same(_ lhs: Range<Int>, _ rhs: Range<Int>) -> Bool {
        bytes.withUnsafeBufferPointer {
            ExpositionTokens.equal(UnsafeBufferPointer(rebasing: $0[lhs]), UnsafeBufferPointer(rebasing: $0[rhs]))
        }
    }
}

extension RelabelLabels {
    /// The labels as a `LabelSet` (for the paths that hold labels as copies).
    var labelSet: LabelSet {
        bytes.withUnsafeBufferPointer { buffer in
            LabelSet(sortedLabels: slots.map {
                Label(name: Array(buffer[$0.name]), value: Array(buffer[$0.value]))
            })
        }
    }

    /// Loads a label set's labels (sorted, without empty values already).
    mutating func load(_ set: LabelSet) {
        bytes.removeAll(keepingCapacity: true)
        slots.removeAll(keepingCapacity: true)
        lineCount = 0
        for label in set.labels {
            label.name.withUnsafeBufferPointer { name in
                label.value.withUnsafeBufferPointer { slots.append(Slot(name: append(name), value: append($0))) }
            }
        }
        endLoading()
    }
}
