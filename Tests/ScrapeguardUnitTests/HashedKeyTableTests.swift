@testable import MetricsFilter
import TestSupport
import Testing

/// `HashedKeyTable` against `Dictionary`, on a fixed seed: random inserts, updates and
/// removals over few slot bits (so probes run long and wrap around the table), the
/// vacant key included; after every step both agree on every key.
@Suite struct HashedKeyTableTests {
    /// A key whose slot bits are few: many keys share a home slot.
    struct CrowdedKey: HashedKey, Hashable {
        var value: UInt64
        var slotBits: UInt64 { value % 7 }
        static var vacant: CrowdedKey { CrowdedKey(value: 0) }
    }

    @Test(arguments: [1, 2, 3])
    func agreesWithADictionary(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        func next(_ bound: UInt64) -> UInt64 { UInt64(random.below(Int(bound))) }
        var table = HashedKeyTable<CrowdedKey, Int>(capacity: 4, placeholder: -1)
        var reference: [CrowdedKey: Int] = [:]
        for step in 0..<20_000 {
            let key = CrowdedKey(value: next(300))  // 0, the vacant key, among them
            switch next(3) {
            case 0, 1:
                table[key] = step
                reference[key] = step
            default:
                table[key] = nil
                reference[key] = nil
            }
            #expect(table.count == reference.count)
            if step % 97 == 0 {
                for value in 0..<300 {
                    let probe = CrowdedKey(value: UInt64(value))
                    #expect(table[probe] == reference[probe], "step \(step), key \(value)")
                }
                var seen: [CrowdedKey: Int] = [:]
                table.forEach { seen[$0] = $1 }
                #expect(seen == reference)
            }
        }
    }
}
