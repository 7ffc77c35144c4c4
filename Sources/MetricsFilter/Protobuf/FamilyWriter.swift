/// One family written as it is filtered. While its fields pass as they came, nothing is
/// copied: the family goes out as its own bytes at the end (a 16 MB family of 100k
/// metrics that the policy leaves alone is one copy, not three). From the first change
/// on, the bytes before it are copied once, and each change is written in its place,
/// its length first (a rewritten metric is not put together in a copy of its own).
struct FamilyWriter {
    private let family: UnsafeRawBufferPointer
    /// The family as rewritten so far, once something changed; a buffer the filter
    /// hands from one family to the next, for its capacity (see
    /// `ProtobufFilter.keptBufferBytes`).
    private var rewritten: [UInt8]
    /// Where the bytes of `family` not yet in `rewritten` start.
    private var copiedUpTo = 0
    private var changed = false

    init(family: UnsafeRawBufferPointer, buffer: [UInt8]) {
        self.family = family
        rewritten = buffer
        rewritten.removeAll(keepingCapacity: true)
    }

    /// Takes `field` of the family out: the bytes before it are kept as they came.
    mutating func remove(_ field: ProtoWire.Field) {
        rewritten.append(contentsOf: family[copiedUpTo..<field.start])
        copiedUpTo = field.end
        changed = true
    }

    /// Puts a length-delimited field numbered `number` of `length` bytes in the place
    /// of `field`; `body` appends exactly those bytes.
    mutating func replace(_ field: ProtoWire.Field, number: Int, length: Int, _ body: (inout [UInt8]) -> Void) {
        remove(field)
        ProtoWire.appendVarint(UInt64(number) << 3 | UInt64(ProtoWire.WireType.lengthDelimited.rawValue), to: &rewritten)
        ProtoWire.appendVarint(UInt64(length), to: &rewritten)
        let start = rewritten.count
        body(&rewritten)
        // A length that said otherwise would misframe every field after it. Every
        // caller computes `length` from the very byte ranges `body` appends (the
        // filter's own arithmetic, no input decides it): a mismatch is a bug here.
        precondition(rewritten.count - start == length, "a replaced field's length is what it said")  // safe: see above
    }

    /// Appends the family, delimited, to `output`; gives the buffer back.
    consuming func finish(into output: inout [UInt8]) -> [UInt8] {
        if changed {
            rewritten.append(contentsOf: family[copiedUpTo...])
            ProtoWire.appendDelimited(rewritten, to: &output)
        } else {
            ProtoWire.appendVarint(UInt64(family.count), to: &output)
            output.append(contentsOf: family)
        }
        return rewritten
    }

    /// Writes nothing (every metric of the family went); gives the buffer back.
    consuming func discard() -> [UInt8] {
        rewritten
    }
}
