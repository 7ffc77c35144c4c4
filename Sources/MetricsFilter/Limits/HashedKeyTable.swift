/// A key that is a hash already (a fingerprint, a pair of FNV hashes): its own bits
/// pick its slot.
protocol HashedKey: Equatable {
    var slotBits: UInt64 { get }
    /// A value that marks a free slot (a real key equal to it is kept apart).
    static var vacant: Self { get }
}

/// A hash table for keys that are hashes already: open addressing over flat arrays,
/// at most half full, linear probing, removal by shifting back (no tombstones).
/// `Dictionary` would hash such keys again with SipHash, which made admission the
/// largest cost of a scrape with limits.
struct HashedKeyTable<Key: HashedKey, Value> {
    /// A key and its value side by side: a lookup reads one place in memory.
    private struct Entry {
        var key: Key
        var value: Value
    }

    /// Free slots hold `Key.vacant` and `placeholder` (no optional: its checks cost in
    /// generic code).
    private var slots: [Entry]
    private let placeholder: Value
    /// The value of the key equal to `Key.vacant`, which has no slot.
    private var vacantValue: Value?
    private(set) var count = 0

    /// A slot number, or the vacant key's place.
    struct Slot {
        fileprivate var number: Int
    }

    init(capacity: Int = 512, placeholder: Value) {
        var size = 16
        while size < capacity * 2 { size *= 2 }
        self.placeholder = placeholder
        slots = Array(repeating: Entry(key: Key.vacant, value: placeholder), count: size)
    }

    /// Bytes the table holds.
    var retainedBytes: Int { slots.capacity * MemoryLayout<Entry>.stride }

    private var mask: Int { slots.count - 1 }

    /// The slot of `key`, or nil.
    func slot(of key: Key) -> Slot? {
        if key == Key.vacant { return vacantValue == nil ? nil : Slot(number: -1) }
        var slot = Int(truncatingIfNeeded: key.slotBits) & mask
        while true {
            let present = slots[slot].key
            if present == key { return Slot(number: slot) }
            if present == Key.vacant { return nil }
            slot = (slot + 1) & mask
        }
    }

    subscript(key: Key) -> Value? {
        get { slot(of: key).map { value(slot: $0) } }
        set {
            if let newValue { insert(key, newValue) } else { remove(key) }
        }
    }

    subscript(key: Key, default defaultValue: @autoclosure () -> Value) -> Value {
        get { self[key] ?? defaultValue() }
        set { insert(key, newValue) }
    }

    /// The value in a slot `slot(of:)` gave, changed in place.
    mutating func update<Result>(slot: Slot, _ body: (inout Value) -> Result) -> Result {
        if slot.number < 0 { return body(&vacantValue!) }
        return body(&slots[slot.number].value)
    }

    func value(slot: Slot) -> Value {
        slot.number < 0 ? vacantValue! : slots[slot.number].value
    }

    /// Inserts or replaces.
    mutating func insert(_ key: Key, _ value: Value) {
        if key == Key.vacant {
            if vacantValue == nil { count += 1 }
            vacantValue = value
            return
        }
        if let slot = slot(of: key) {
            slots[slot.number].value = value
            return
        }
        if (count + 1) * 2 > slots.count { resize(to: slots.count * 2) }
        var slot = Int(truncatingIfNeeded: key.slotBits) & mask
        while slots[slot].key != Key.vacant { slot = (slot + 1) & mask }
        slots[slot] = Entry(key: key, value: value)
        count += 1
    }

    mutating func remove(_ key: Key) {
        guard let found = slot(of: key) else { return }
        count -= 1
        guard found.number >= 0 else {
            vacantValue = nil
            return
        }
        let free = Entry(key: Key.vacant, value: placeholder)
        var hole = found.number
        slots[hole] = free
        // Shift back the entries after the hole that probed past it.
        var slot = (hole + 1) & mask
        while slots[slot].key != Key.vacant {
            let home = Int(truncatingIfNeeded: slots[slot].key.slotBits) & mask
            // It stays when its home is within (hole, slot], cyclically.
            let stays = hole <= slot ? (home > hole && home <= slot) : (home > hole || home <= slot)
            if !stays {
                slots[hole] = slots[slot]
                slots[slot] = free
                hole = slot
            }
            slot = (slot + 1) & mask
        }
    }

    /// Every key and value; `body` may not change the table.
    func forEach(_ body: (Key, Value) -> Void) {
        if let vacantValue { body(Key.vacant, vacantValue) }
        for entry in slots where entry.key != Key.vacant {
            body(entry.key, entry.value)
        }
    }

    private mutating func resize(to size: Int) {
        let old = slots
        slots = Array(repeating: Entry(key: Key.vacant, value: placeholder), count: size)
        let mask = size - 1
        for entry in old where entry.key != Key.vacant {
            var target = Int(truncatingIfNeeded: entry.key.slotBits) & mask
            while slots[target].key != Key.vacant { target = (target + 1) & mask }
            slots[target] = entry
        }
    }
}

extension UInt64: HashedKey {
    /// A label name's FNV hash: mixed, since FNV's low bits are weak.
    var slotBits: UInt64 { (self ^ (self >> 29)) &* 0xBF58_476D_1CE4_E5B9 }
    static var vacant: UInt64 { 0 }
}
