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
    private var keys: [Key]
    /// `placeholder` in free slots: no optional, whose checks cost in generic code.
    private var values: [Value]
    private let placeholder: Value
    /// The value of the key equal to `Key.vacant`, which has no slot.
    private var vacantValue: Value?
    private(set) var count = 0

    /// A slot number, or the vacant key's place.
    struct Slot {
        fileprivate var number: Int
    }

    init(capacity: Int = 16, placeholder: Value) {
        var size = 16
        while size < capacity * 2 { size *= 2 }
        self.placeholder = placeholder
        keys = Array(repeating: Key.vacant, count: size)
        values = Array(repeating: placeholder, count: size)
    }

    /// Bytes the table's arrays hold.
    var retainedBytes: Int { keys.capacity * MemoryLayout<Key>.stride + values.capacity * MemoryLayout<Value>.stride }

    private var mask: Int { keys.count - 1 }

    /// The slot of `key`, or nil.
    func slot(of key: Key) -> Slot? {
        if key == Key.vacant { return vacantValue == nil ? nil : Slot(number: -1) }
        var slot = Int(truncatingIfNeeded: key.slotBits) & mask
        while true {
            let present = keys[slot]
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
        return body(&values[slot.number])
    }

    func value(slot: Slot) -> Value {
        slot.number < 0 ? vacantValue! : values[slot.number]
    }

    /// Inserts or replaces.
    mutating func insert(_ key: Key, _ value: Value) {
        if key == Key.vacant {
            if vacantValue == nil { count += 1 }
            vacantValue = value
            return
        }
        if let slot = slot(of: key) {
            values[slot.number] = value
            return
        }
        if (count + 1) * 2 > keys.count { resize(to: keys.count * 2) }
        var slot = Int(truncatingIfNeeded: key.slotBits) & mask
        while keys[slot] != Key.vacant { slot = (slot + 1) & mask }
        keys[slot] = key
        values[slot] = value
        count += 1
    }

    mutating func remove(_ key: Key) {
        guard let found = slot(of: key) else { return }
        count -= 1
        guard found.number >= 0 else {
            vacantValue = nil
            return
        }
        var hole = found.number
        keys[hole] = Key.vacant
        values[hole] = placeholder
        // Shift back the entries after the hole that probed past it.
        var slot = (hole + 1) & mask
        while keys[slot] != Key.vacant {
            let moving = keys[slot]
            let home = Int(truncatingIfNeeded: moving.slotBits) & mask
            // It stays when its home is within (hole, slot], cyclically.
            let stays = hole <= slot ? (home > hole && home <= slot) : (home > hole || home <= slot)
            if !stays {
                keys[hole] = moving
                values[hole] = values[slot]
                keys[slot] = Key.vacant
                values[slot] = placeholder
                hole = slot
            }
            slot = (slot + 1) & mask
        }
    }

    /// Every key and value; `body` may not change the table.
    func forEach(_ body: (Key, Value) -> Void) {
        if let vacantValue { body(Key.vacant, vacantValue) }
        for slot in keys.indices where keys[slot] != Key.vacant {
            body(keys[slot], values[slot])
        }
    }

    private mutating func resize(to size: Int) {
        let oldKeys = keys
        let oldValues = values
        keys = Array(repeating: Key.vacant, count: size)
        values = Array(repeating: placeholder, count: size)
        let mask = size - 1
        for slot in oldKeys.indices where oldKeys[slot] != Key.vacant {
            var target = Int(truncatingIfNeeded: oldKeys[slot].slotBits) & mask
            while keys[target] != Key.vacant { target = (target + 1) & mask }
            keys[target] = oldKeys[slot]
            values[target] = oldValues[slot]
        }
    }
}

extension UInt64: HashedKey {
    /// A label name's FNV hash: mixed, since FNV's low bits are weak.
    var slotBits: UInt64 { (self ^ (self >> 29)) &* 0xBF58_476D_1CE4_E5B9 }
    static var vacant: UInt64 { 0 }
}
