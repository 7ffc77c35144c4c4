import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What the filter decided about each series, remembered from one scrape to the next.
///
/// Prometheus scrapes the same series again and again, and between two scrapes a
/// line mostly differs only in its value. Everything the policy decides about a
/// sample line (relabeling, PII pseudonyms and detectors, the label limits, name
/// validity) depends only on its series part: the bytes before the value. The memo
/// keeps, per series part, that decision: dropped (and why), or written, with the
/// bytes to write before the value and what admission and the structure check read
/// of its labels. A line whose series part is remembered is verified byte for byte
/// against it (a hash alone never decides), and only its value and timestamp are
/// read and checked anew. Admission and the structure check (duplicates, order,
/// histogram groups, OpenMetrics families) depend on the rest of the scrape and run
/// on every line, fed from the memo. The protobuf exposition is remembered the same
/// way per `Metric`: its key is the family's name and type and the metric's label
/// fields as they came (`ProtobufFilter.filterRemembered`).
///
/// Lines come in the same order scrape after scrape, so each entry also remembers
/// which entry followed it: the next line is first compared with that one, without
/// hashing, and its bytes are read in the order they were written.
///
/// Bounded by a byte budget (entries, their bytes, the hash index; the entries'
/// series numbers, `SeriesNumbers`, when they fit): a series that
/// does not fit is filtered without the memo. When a scrape found the memo full, the
/// next one begins by forgetting every series the last scrape did not see (the least
/// recently seen). Everything is forgotten when the policy, the format or the name
/// escaping differs from the last scrape's.
///
/// About 520 lines, one job: the three parts (entries, their bytes, the index) live
/// in memory this type maps itself, so their lookup, insertion under the budget and
/// compaction stay together, and so does the rule of who may change them (a scrape
/// alone) and who only reads them (`Cursor`, `settled`, `missedWhileShared`): every
/// write is a method here, where the sharing rule can be checked against it. The
/// entry's layout and the draft are in MemoEntry.swift, the lending in
/// SeriesMemoStore.swift.
///
/// Changed by one scrape at a time, or read by several at once and changed by none
/// (`SeriesMemoStore` hands it over, see `Cursor`): a memo whose last scrape found
/// every line it could remember (`settled`) has nothing to write down, so scrapes that
/// overlap read it together rather than each filling a memo of its own. A scrape that
/// shares it changes nothing in it: it keeps its place in a `Cursor` of its own, and a
/// line it does not find is filtered in full and only flagged (`missedWhileShared`),
/// for the next scrape that has the memo alone to remember.
/// Its state is `@exclusivity(unchecked)`, as `StreamingFilter`'s is: its methods make
/// every access, none calls out while one is open.
/// Its memory is reserved (not committed) up front, about 2.1 times the budget of
/// address space (a store's four memos: about 8.5 times), and committed as entries are
/// written, so that it never grows by copying; where a strict overcommit policy will
/// not reserve that, the memo is off.
public final class SeriesMemo: @unchecked Sendable {
    // @unchecked: one scrape changes it at a time, or several read it and none
    // changes it; handed over under SeriesMemoStore's lock.

    /// What one remembered series costs besides its bytes: the entry and its share of
    /// the index.
    static let entryOverhead = MemoryLayout<Entry>.stride + 2 * MemoryLayout<Int32>.stride

    /// A hash of a series part. The default reads 8 bytes at a time; tests inject a
    /// colliding one.
    public typealias Hash = @Sendable (UnsafeRawBufferPointer) -> UInt64

    /// What the filter's hits and misses were in the scrapes so far.
    public struct Statistics: Sendable, Hashable {
        /// Lines whose series part was remembered.
        public var hits = 0
        /// Lines filtered in full and remembered.
        public var misses = 0
        /// Lines filtered in full and not remembered: the budget was spent.
        public var refused = 0
        /// Lines filtered in full by a scrape that shared the memo with others: left
        /// for the next scrape that has it alone.
        public var missedWhileShared = 0

        public init(hits: Int = 0, misses: Int = 0, refused: Int = 0, missedWhileShared: Int = 0) {
            self.hits = hits
            self.misses = misses
            self.refused = refused
            self.missedWhileShared = missedWhileShared
        }
    }

    /// One scrape's place in the memo. A scrape that has the memo alone (`exclusive`)
    /// marks what it meets, links each line after the one before as the prediction for
    /// next time, and remembers what it did not find; one that shares it with scrapes
    /// running at once only reads it.
    public struct Cursor: Sendable {
        /// The entry of the remembered line before the one being filtered.
        fileprivate(set) var previous: Int32 = -1
        /// What this scrape's lines found.
        public fileprivate(set) var statistics = Statistics()
        public let exclusive: Bool

        public init(exclusive: Bool) {
            self.exclusive = exclusive
        }
    }

    public let budget: Int
    /// Where the bytes come from: this memo's own budget, or one the memos of a store
    /// share.
    private let shared: MemoBudget
    let hash: Hash
    /// What the lines of the scrapes that had the memo alone and ended found, added up
    /// as each ends (`scrapeEnded`); a scrape's own counts are its `Cursor`'s.
    @exclusivity(unchecked) public private(set) var statistics = Statistics()

    // What the entries were decided under.
    @exclusivity(unchecked) private var policy: FilterPolicy?
    /// nil for the protobuf exposition (and for a memo that served nothing yet).
    @exclusivity(unchecked) private var format: ExpositionFormat?
    @exclusivity(unchecked) private var servedAnything = false
    @exclusivity(unchecked) private var names: NameEscaping?

    /// The entries, in the order their series were first seen.
    private let entries: UnsafeMutablePointer<Entry>
    private let entryCapacity: Int
    @exclusivity(unchecked) private(set) var count = 0
    /// The entries' bytes, each entry's in one block, in the entries' order.
    private let arena: UnsafeMutableRawPointer
    @exclusivity(unchecked) private var arenaUsed = 0
    /// Open addressing over entry numbers; -1 is free. At most half full.
    /// Its slots are reserved like the arena; `indexCount` of them are in use (0 or a
    /// power of two).
    private let index: UnsafeMutablePointer<Int32>
    private let indexCapacity: Int
    @exclusivity(unchecked) private var indexCount = 0

    /// The scrape now running (entries seen in it have `lastSeen == generation`).
    @exclusivity(unchecked) private var generation: UInt32 = 0
    /// The first remembered line of the last scrape: the prediction for the first line.
    @exclusivity(unchecked) private(set) var first: Int32 = -1
    /// An entry was refused for the budget in this scrape.
    @exclusivity(unchecked) private var full = false
    /// The last scrape that had the memo alone was refused nothing (it remembered every
    /// line it met that it could): scrapes at once may share it (read under
    /// `SeriesMemoStore`'s lock).
    @exclusivity(unchecked) private(set) var settled = false
    /// Series the last scrape that had the memo alone wrote: what the next makes room
    /// for in its duplicate check (not `count`: a memo also holds series dropped,
    /// refused by a limit, or no longer scraped).
    @exclusivity(unchecked) private(set) var seriesWrittenLastScrape = 0
    /// The memo's series, numbered for the duplicate check (see `SeriesNumbers`).
    @exclusivity(unchecked) private var seriesNumbers: SeriesNumbers?
    /// A scrape sharing the memo met a line it could have remembered: the memo is no
    /// longer settled once the sharing scrapes are done.
    let missedWhileShared = Atomic<Bool>(false)

    /// - Parameters:
    ///   - budget: bytes the memo may hold; 0 turns it off.
    ///   - hash: the hash of series parts; the default is meant for production.
    public convenience init(budget: Int, hash: Hash? = nil) {
        self.init(sharing: MemoBudget(limit: budget), hash: hash)
    }

    /// A memo whose bytes count in `sharing`, with other memos' (a store's).
    /// Where the address space cannot be had (a strict overcommit policy counts it),
    /// the memo is off: its budget 0, and its parts small heap blocks it never writes.
    init(sharing budget: MemoBudget, hash: Hash? = nil) {
        shared = budget
        self.hash = hash ?? SeriesMemo.defaultHash
        let wanted = min(max(0, budget.limit), Self.maximumBudget)
        let capacity = max(1, wanted / Self.entryOverhead)
        let reserved = wanted == 0 ? nil
            : Self.reserve(capacity * MemoryLayout<Entry>.stride, wanted,
                           Self.indexSize(for: capacity) * MemoryLayout<Int32>.stride)
        mapped = reserved != nil
        self.budget = mapped ? wanted : 0
        entryCapacity = mapped ? capacity : 1
        indexCapacity = Self.indexSize(for: entryCapacity)
        let parts = reserved ?? (
            UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<Entry>.stride, alignment: MemoryLayout<Entry>.alignment),
            UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1),
            UnsafeMutableRawPointer.allocate(byteCount: indexCapacity * MemoryLayout<Int32>.stride,
                                             alignment: MemoryLayout<Int32>.alignment))
        entries = parts.0.bindMemory(to: Entry.self, capacity: entryCapacity)
        arena = parts.1
        index = parts.2.bindMemory(to: Int32.self, capacity: indexCapacity)
    }

    /// Whether the parts are mmap'd (else the heap blocks of a memo that is off).
    private let mapped: Bool

    /// A budget's offsets are 32-bit: `filter.memo_budget` is at most 1 GiB.
    static let maximumBudget = 1 << 30

    deinit {
        shared.give(usedBytes)
        guard mapped else {
            UnsafeMutableRawPointer(entries).deallocate()
            arena.deallocate()
            UnsafeMutableRawPointer(index).deallocate()
            return
        }
        munmap(UnsafeMutableRawPointer(entries), entryCapacity * MemoryLayout<Entry>.stride)
        munmap(arena, budget)
        munmap(UnsafeMutableRawPointer(index), indexCapacity * MemoryLayout<Int32>.stride)
    }

    /// Address space the kernel commits only as it is written: all three parts, or
    /// none.
    private static func reserve(_ first: Int, _ second: Int, _ third: Int)
        -> (UnsafeMutableRawPointer, UnsafeMutableRawPointer, UnsafeMutableRawPointer)? {
        func region(_ bytes: Int) -> UnsafeMutableRawPointer? {
            guard let region = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
                region != MAP_FAILED else { return nil }
            return region
        }
        guard let a = region(first) else { return nil }
        guard let b = region(second) else {
            munmap(a, first)
            return nil
        }
        guard let c = region(third) else {
            munmap(a, first)
            munmap(b, second)
            return nil
        }
        return (a, b, c)
    }

    /// A hash of everything the memo holds and its state between scrapes: a scrape
    /// that shares the memo must leave it unchanged (the fuzz target and the tests
    /// compare it before and after).
    var stateFingerprint: UInt64 {
        var state: [UInt64] = [UInt64(count), UInt64(arenaUsed), UInt64(indexCount), UInt64(bitPattern: Int64(first)),
                               UInt64(generation), full ? 1 : 0, settled ? 1 : 0, servedAnything ? 1 : 0,
                               UInt64(seriesWrittenLastScrape), UInt64(numberedSeries)]
        for part in [UnsafeRawBufferPointer(start: entries, count: count * MemoryLayout<Entry>.stride),
                     UnsafeRawBufferPointer(start: arena, count: arenaUsed),
                     UnsafeRawBufferPointer(start: index, count: indexCount * MemoryLayout<Int32>.stride)] {
            state.append(Self.defaultHash(part))
        }
        return state.withUnsafeBytes { Self.defaultHash($0) }
    }

    /// Bytes the memo holds: its entries, their bytes, its index, its series' numbers.
    public var usedBytes: Int { entryBytes + (seriesNumbers?.bytes ?? 0) }

    /// The same without the series' numbers.
    var entryBytes: Int { count * MemoryLayout<Entry>.stride + arenaUsed + indexCount * MemoryLayout<Int32>.stride }

    /// A scrape that has the memo alone begins: the memo is cleared if the policy,
    /// format or escaping changed, and made room in if the last scrape found it full.
    /// `format` nil: the protobuf exposition.
    func beginScrape(policy: FilterPolicy, format: ExpositionFormat?, names: NameEscaping) {
        if !servedAnything || self.policy != policy || self.format != format || self.names != names {
            servedAnything = true
            removeAll()
            self.policy = policy
            self.format = format
            self.names = names
        } else if full {
            forgetSeriesNotSeenLastScrape()
        }
        numberSeries()
        full = false
        settled = true
        generation &+= 1
    }

    /// Numbers the entries' series again when they changed (see `SeriesNumbers`), if
    /// the budget has room. Numbers already made stay valid for the entries below
    /// their count (entries are only added between compactions, which drop them): they
    /// are kept when new ones do not fit.
    private func numberSeries() {
        let old = seriesNumbers
        if let old, old.count == count { return }
        let wanted = SeriesNumbers.bytes(for: count)
        guard count > 0, entryBytes + wanted <= budget else { return }
        dropSeriesNumbers()
        if shared.take(wanted) {
            seriesNumbers = SeriesNumbers(entries: entries, count: count)
        } else if let old, shared.take(old.bytes) {
            seriesNumbers = old
        }
    }

    private func dropSeriesNumbers() {
        guard let numbers = seriesNumbers else { return }
        seriesNumbers = nil
        shared.give(numbers.bytes)
    }

    /// How many series numbers there are: the bits a scrape's duplicate check needs.
    var numberedSeries: Int { seriesNumbers?.count ?? 0 }

    /// The number of the series entry `number` writes, when numbered; else the number
    /// of `series` (see `SeriesNumbers`): the one rule every series a scrape writes is
    /// checked under.
    func seriesNumber(ofEntry number: Int32, series: SeriesFingerprint) -> Int32? {
        seriesNumbers?.number(ofEntry: number) ?? seriesNumbers?.number(for: series, entries: entries)
    }

    /// The number of `series` when an entry numbered writes it.
    func seriesNumber(for series: SeriesFingerprint) -> Int32? {
        seriesNumbers?.number(for: series, entries: entries)
    }

    /// Whether scrapes at once may read it together under `policy`: the last scrape
    /// that had it alone was refused nothing, under this policy, and
    /// no scrape sharing it since missed a line (those that share it finish, and the
    /// next has it alone, rather than more joining a memo that falls behind).
    /// Asked under `SeriesMemoStore`'s lock, while no scrape has the memo alone.
    func isSettled(for policy: FilterPolicy) -> Bool {
        settled && !missedWhileShared.load(ordering: .relaxed) && self.policy == policy
    }

    /// A scrape ended, having written `seriesWritten` series: that, and what its lines
    /// found, are kept when it had the memo alone.
    /// The entries it added are numbered now, while it still has the memo alone: a
    /// settled memo is lent shared from then on, to every scrape (one at a time too),
    /// and a scrape that shares it never numbers, so numbering only when the next
    /// scrape that has it alone begins left a gateway's steady scrapes with no numbers
    /// at all (a third of its CPU at 100k series went to the fingerprint table's probe).
    func scrapeEnded(seriesWritten: Int, _ cursor: Cursor) {
        guard cursor.exclusive else { return }
        numberSeries()
        seriesWrittenLastScrape = seriesWritten
        statistics.hits += cursor.statistics.hits
        statistics.misses += cursor.statistics.misses
        statistics.refused += cursor.statistics.refused
    }

    /// Whether a line this scrape does not find is worth writing down: not once the
    /// budget refused one in this scrape (a later one would mostly be refused as
    /// well, after the cost of writing its decision down; which series a full memo
    /// holds is a matter of speed only), nor once a scrape that shares the memo has
    /// flagged a miss (one is all the flag needs).
    func takesMore(_ cursor: Cursor) -> Bool {
        cursor.exclusive ? budget > 0 && !full : cursor.statistics.missedWhileShared == 0
    }

    /// A line this scrape does not find is filtered without being written down
    /// (`takesMore` was false): counted as refused (or missed while shared), also when
    /// its decision would not have been one the memo keeps (a malformed metric, PII
    /// counts past what an entry holds): without the draft that is not known.
    func passedOver(_ cursor: inout Cursor) {
        if cursor.exclusive {
            cursor.statistics.refused += 1
        } else {
            cursor.statistics.missedWhileShared += 1
        }
    }

    /// The scrapes that shared the memo are done: if one of them missed a line, the
    /// next scrape has the memo alone, to remember it.
    func endSharing() {
        if missedWhileShared.exchange(false, ordering: .relaxed) { settled = false }
    }

    /// Whether its entries were decided for this format (nil: protobuf) and escaping.
    func serves(format: ExpositionFormat?, names: NameEscaping?) -> Bool {
        servedAnything && self.format == format && self.names == names
    }

    /// Forgets everything.
    func removeAll() {
        shared.give(usedBytes)
        seriesNumbers = nil
        if count > 0 {
            madvise(UnsafeMutableRawPointer(entries), count * MemoryLayout<Entry>.stride, MADV_DONTNEED)
            madvise(arena, arenaUsed, MADV_DONTNEED)
        }
        count = 0
        arenaUsed = 0
        if indexCount > 0 { madvise(UnsafeMutableRawPointer(index), indexCount * MemoryLayout<Int32>.stride, MADV_DONTNEED) }
        indexCount = 0
        first = -1
        settled = false
        seriesWrittenLastScrape = 0
    }

    // MARK: Lookup

    /// The entry predicted for the line after `cursor`'s: the one that followed the
    /// last line's entry in the last scrape that saw both (the first line's, for the
    /// first).
    func predicted(after cursor: Cursor) -> Int32 {
        cursor.previous < 0 ? first : entries[Int(cursor.previous)].next
    }

    /// Whether `line` starts with entry `number`'s series part followed by a space.
    func lineStarts(with number: Int32, _ line: UnsafeBufferPointer<UInt8>) -> Bool {
        let entry = entries[Int(number)]
        let length = Int(entry.keyLength)
        guard line.count > length + 1, line[length] == UInt8(ascii: " ") else { return false }
        return memcmp(line.baseAddress!, arena + Int(entry.offset), length) == 0
    }

    /// Whether entry `number` was remembered for `key` (a protobuf metric's key: its
    /// family, type and label fields), byte for byte.
    func hasKey(_ number: Int32, _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        let entry = entries[Int(number)]
        guard Int(entry.keyLength) == key.count else { return false }
        return key.isEmpty || memcmp(key.baseAddress!, arena + Int(entry.offset), key.count) == 0
    }

    /// The entry remembered for a series part, if any: found by hash, confirmed byte
    /// for byte.
    func find(_ key: UnsafeBufferPointer<UInt8>, hash: UInt64) -> Int32? {
        guard indexCount > 0 else { return nil }
        let mask = indexCount - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let number = index[slot]
            if number < 0 { return nil }
            let entry = entries[Int(number)]
            if entry.hash == hash, Int(entry.keyLength) == key.count,
                key.isEmpty || memcmp(key.baseAddress!, arena + Int(entry.offset), key.count) == 0 {
                return number
            }
            slot = (slot + 1) & mask
        }
    }

    func hash(of key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        hash(UnsafeRawBufferPointer(key))
    }

    /// The entry's line was met in this scrape, after the previous one.
    func touch(_ number: Int32, _ cursor: inout Cursor) {
        cursor.statistics.hits += 1
        guard cursor.exclusive else {
            cursor.previous = number
            return
        }
        entries[Int(number)].lastSeen = generation
        follow(with: number, &cursor)
    }

    /// Links the entry after the previous line's, as the prediction for next time.
    private func follow(with number: Int32, _ cursor: inout Cursor) {
        if cursor.previous < 0 {
            first = number
        } else {
            entries[Int(cursor.previous)].next = number
        }
        cursor.previous = number
    }

    func entry(_ number: Int32) -> Entry {
        entries[Int(number)]
    }

    /// Keeps where admission found the entry's unit (see `Entry.unitHint`); a scrape
    /// that shares the memo leaves it.
    func setUnitHint(_ hint: SeriesTracker.UnitHint, of number: Int32, _ cursor: Cursor) {
        guard cursor.exclusive else { return }
        entries[Int(number)].unitHint = hint
    }

    /// A view of entry `number`'s bytes, valid until the memo next changes.
    func bytes(_ number: Int32) -> EntryBytes {
        let entry = entries[Int(number)]
        return EntryBytes(entry: entry, base: UnsafeRawPointer(arena + Int(entry.offset)))
    }

    // MARK: Remembering

    /// Remembers a decision about the series part `key`, from `draft` (its bytes,
    /// laid out as `EntryBytes` reads them). Returns the entry, or nil when the budget
    /// is spent or the scrape shares the memo (it goes on without remembering it).
    @discardableResult
    func remember(key: UnsafeBufferPointer<UInt8>, hash: UInt64, draft: inout MemoDraft, _ cursor: inout Cursor) -> Int32? {
        guard cursor.exclusive else {
            if cursor.statistics.missedWhileShared == 0 { missedWhileShared.store(true, ordering: .relaxed) }
            cursor.statistics.missedWhileShared += 1
            return nil
        }
        let block = draft.bytes.count
        let indexCount = Self.indexSize(for: count + 1)
        let needed = (count + 1) * MemoryLayout<Entry>.stride + arenaUsed + block + indexCount * MemoryLayout<Int32>.stride
            + (seriesNumbers?.bytes ?? 0)
        guard budget > 0, needed <= budget, count < Int32.max, count + 1 <= entryCapacity, indexCount <= indexCapacity,
            shared.take(needed - usedBytes) else {
            full = budget > 0
            settled = false
            cursor.statistics.refused += 1
            return nil
        }
        draft.bytes.withUnsafeBytes { arena.advanced(by: arenaUsed).copyMemory(from: $0.baseAddress!, byteCount: block) }
        var entry = draft.entry
        entry.offset = Int32(arenaUsed)
        entry.hash = hash
        entry.lastSeen = generation
        entry.next = -1
        let number = Int32(count)
        (entries + count).initialize(to: entry)
        count += 1
        arenaUsed += block
        if indexCount != self.indexCount {
            rebuildIndex(size: indexCount)
        } else {
            insertIntoIndex(number, hash: hash)
        }
        follow(with: number, &cursor)
        cursor.statistics.misses += 1
        return number
    }

    private static func indexSize(for entries: Int) -> Int {
        var size = 1024
        while size < entries * 2 { size *= 2 }
        return size
    }

    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Gives the kernel back the whole pages of `base` past the first `kept` bytes, up
    /// to `used`: they read as zero again, and no longer count as resident.
    private static func giveBack(_ base: UnsafeMutableRawPointer, keeping kept: Int, of used: Int) {
        let start = (kept + pageSize - 1) / pageSize * pageSize
        if start < used { madvise(base + start, used - start, MADV_DONTNEED) }
    }

    private func rebuildIndex(size: Int) {
        if size < indexCount {
            Self.giveBack(UnsafeMutableRawPointer(index), keeping: size * MemoryLayout<Int32>.stride,
                          of: indexCount * MemoryLayout<Int32>.stride)
        }
        index.update(repeating: -1, count: size)
        indexCount = size
        for number in 0..<count { insertIntoIndex(Int32(number), hash: entries[number].hash) }
    }

    private func insertIntoIndex(_ number: Int32, hash: UInt64) {
        let mask = indexCount - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while index[slot] >= 0 { slot = (slot + 1) & mask }
        index[slot] = number
    }

    /// Keeps only the entries the last scrape saw, moved down in place, in order.
    private func forgetSeriesNotSeenLastScrape() {
        let before = usedBytes
        var renumbered = [Int32](repeating: -1, count: count)
        var kept = 0
        var cursor = 0
        for number in 0..<count {
            var entry = entries[number]
            guard entry.lastSeen == generation else { continue }
            let size = entry.blockSize
            if cursor != Int(entry.offset) {
                (arena + cursor).copyMemory(from: arena + Int(entry.offset), byteCount: size)
            }
            entry.offset = Int32(cursor)
            entries[kept] = entry
            renumbered[number] = Int32(kept)
            cursor += size
            kept += 1
        }
        for number in 0..<kept where entries[number].next >= 0 {
            entries[number].next = renumbered[Int(entries[number].next)]
        }
        first = first >= 0 ? renumbered[Int(first)] : -1
        Self.giveBack(arena, keeping: cursor, of: arenaUsed)
        Self.giveBack(UnsafeMutableRawPointer(entries), keeping: kept * MemoryLayout<Entry>.stride,
                      of: count * MemoryLayout<Entry>.stride)
        // Entries moved down: numbers by entry mean other series now, even where as
        // many entries are left as were numbered (`numberSeries` makes them again).
        // Their bytes go back below, with the rest.
        if kept != count { seriesNumbers = nil }
        count = kept
        arenaUsed = cursor
        rebuildIndex(size: Self.indexSize(for: count))
        shared.give(before - usedBytes)
    }

    // MARK: Hash

    /// Eight bytes at a time, each folded in with a multiply (the last partial word
    /// padded with zeros); mixed at the end (the index takes the low bits).
    public static let defaultHash: Hash = { bytes in
        var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(bytes.count)
        bytes.forEachWord { word in
            hash = (hash ^ (word &* 0xBF58_476D_1CE4_E5B9))
            hash = ((hash << 27) | (hash >> 37)) &* 0x94D0_49BB_1331_11EB
        }
        hash ^= hash >> 31
        hash &*= 0xD6E8_FEB8_6659_FD93
        hash ^= hash >> 32
        return hash
    }
}
