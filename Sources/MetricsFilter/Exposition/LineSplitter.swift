#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Cuts a body that arrives in chunks of any size into lines, holding back at most
/// one partial line. A line longer than `maximumLineLength` is skipped whole (up to
/// its newline) and reported, so memory stays bounded whatever the body.
public struct LineSplitter: Sendable {
    public let maximumLineLength: Int
    private var pending: [UInt8] = []
    private var skippingOversizedLine = false

    public init(maximumLineLength: Int) {
        self.maximumLineLength = maximumLineLength
    }

    /// What a line callback receives.
    public enum Event {
        /// A complete line, without its `\n`.
        case line(UnsafeRawBufferPointer)
        /// A line longer than the limit was skipped.
        case oversizedLine
    }

    /// Feeds one chunk; calls `body` for each complete line in order.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, _ body: (Event) -> Void) {
        var start = 0
        let count = chunk.count
        while start < count {
            let rest = UnsafeRawBufferPointer(rebasing: chunk[start...])
            guard let found = memchr(rest.baseAddress!, 0x0A, rest.count) else {
                append(rest, body)
                return
            }
            let newline = UnsafeRawPointer(found) - rest.baseAddress!
            let lineEnd = start + newline
            let piece = UnsafeRawBufferPointer(rebasing: chunk[start..<lineEnd])
            start = lineEnd + 1
            if skippingOversizedLine {
                skippingOversizedLine = false
                continue
            }
            if pending.isEmpty {
                if piece.count > maximumLineLength {
                    body(.oversizedLine)
                } else {
                    body(.line(piece))
                }
            } else {
                if pending.count + piece.count > maximumLineLength {
                    pending.removeAll(keepingCapacity: true)
                    body(.oversizedLine)
                    continue
                }
                pending.append(contentsOf: piece)
                pending.withUnsafeBytes { body(.line($0)) }
                pending.removeAll(keepingCapacity: true)
            }
        }
    }

    /// The body ended: a last line without `\n` is returned as `unterminated`.
    public mutating func finish() -> [UInt8]? {
        defer {
            pending = []
            skippingOversizedLine = false
        }
        if skippingOversizedLine || pending.isEmpty { return nil }
        return pending
    }

    private mutating func append(_ bytes: UnsafeRawBufferPointer, _ body: (Event) -> Void) {
        guard !skippingOversizedLine else { return }
        if pending.count + bytes.count > maximumLineLength {
            pending.removeAll(keepingCapacity: true)
            skippingOversizedLine = true
            body(.oversizedLine)
            return
        }
        pending.append(contentsOf: bytes)
    }
}
