/// Cuts a varint-delimited stream of messages (the protobuf exposition: each
/// `MetricFamily` after its length) into whole messages, whatever the chunks. A
/// message announced longer than the bound is not buffered: its bytes are skipped as
/// they come and it is reported once, so a hostile length costs no memory.
struct DelimitedSplitter {
    enum Event {
        /// A whole message; valid only during the callback.
        case message(UnsafeRawBufferPointer)
        /// A message longer than the bound, skipped.
        case oversized
    }

    let maximumMessageLength: Int
    /// The bytes of a message (or of its length) not yet whole.
    private var pending: [UInt8] = []
    /// Bytes still to skip of an oversized message.
    private var skipping = 0
    /// A length that is no varint was met: nothing after it can be framed.
    private var unframable = false

    init(maximumMessageLength: Int) {
        self.maximumMessageLength = maximumMessageLength
    }

    /// What is held for the message being gathered.
    var retainedBytes: Int { pending.capacity }

    mutating func feed(_ chunk: UnsafeRawBufferPointer, _ body: (Event) -> Void) {
        guard !unframable else { return }
        var index = 0
        while index < chunk.count {
            if skipping > 0 {
                let skipped = min(skipping, chunk.count - index)
                skipping -= skipped
                index += skipped
                continue
            }
            if pending.isEmpty {
                // The common case: the next message lies whole in this chunk.
                var cursor = index
                if let length = try? ProtoWire.varint(chunk, at: &cursor), length <= UInt64(chunk.count - cursor),
                   length <= UInt64(maximumMessageLength) {
                    body(.message(UnsafeRawBufferPointer(rebasing: chunk[cursor..<(cursor + Int(length))])))
                    index = cursor + Int(length)
                    continue
                }
            }
            // Gather the length, then the message, across chunks.
            pending.append(chunk[index])
            index += 1
            var cursor = 0
            let length = pending.withUnsafeBytes { bytes -> UInt64? in
                do { return try ProtoWire.varint(bytes, at: &cursor) } catch { return nil }
            }
            guard let length else {
                if pending.count > 10 {
                    // No varint is longer: what follows cannot be framed.
                    pending.removeAll()
                    unframable = true
                    body(.oversized)
                    return
                }
                continue
            }
            if length > UInt64(maximumMessageLength) {
                skipping = Int(clamping: length)
                pending = []
                body(.oversized)
                continue
            }
            let needed = cursor + Int(length)
            if pending.count == cursor { pending.reserveCapacity(needed) }
            let taken = min(needed - pending.count, chunk.count - index)
            pending.append(contentsOf: chunk[index..<(index + taken)])
            index += taken
            if pending.count == needed {
                pending.withUnsafeBytes { body(.message(UnsafeRawBufferPointer(rebasing: $0[cursor...]))) }
                pending = []
            }
        }
    }

    /// The stream ended: false when it ended inside a message (or its length); an
    /// unframable stream was reported already.
    func finish() -> Bool {
        unframable || (pending.isEmpty && skipping == 0)
    }
}
