#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a line's bytes are written: an array as it grows, or `ByteWriter` into room
/// made for the line up front, after `ByteCounter` measured it by the same writing.
protocol ByteOutput {
    mutating func append(_ byte: UInt8)
    mutating func append(bytes: UnsafeBufferPointer<UInt8>)
}

extension Array: ByteOutput where Element == UInt8 {
    mutating func append(bytes: UnsafeBufferPointer<UInt8>) {
        append(contentsOf: bytes)
    }
}

/// Counts what would be written: the room a `ByteWriter` needs, from the very code
/// that then writes, so the two cannot disagree.
struct ByteCounter: ByteOutput {
    private(set) var count = 0

    mutating func append(_ byte: UInt8) {
        count += 1
    }

    mutating func append(bytes: UnsafeBufferPointer<UInt8>) {
        count += bytes.count
    }
}

/// Writes into memory made ready for exactly `count` bytes, without the array's
/// uniqueness check and growth test at every piece of a line (a rewritten line is a
/// dozen pieces). Writing past the end stops the process: the room is counted by the
/// same writing (`ByteCounter`), over bytes that do not change between the two, so a
/// mismatch is a bug, never input.
struct ByteWriter: ByteOutput {
    private var next: UnsafeMutablePointer<UInt8>
    private let end: UnsafeMutablePointer<UInt8>

    init(_ room: UnsafeMutableBufferPointer<UInt8>) {
        next = room.baseAddress!
        end = next + room.count
    }

    /// Whether every byte of the room was written.
    var isFull: Bool { next == end }

    mutating func append(_ byte: UInt8) {
        precondition(next < end, "ByteWriter: past its room")  // safe: see the type's note
        next.pointee = byte
        next += 1
    }

    mutating func append(bytes: UnsafeBufferPointer<UInt8>) {
        precondition(end - next >= bytes.count, "ByteWriter: past its room")  // safe: see the type's note
        guard let source = bytes.baseAddress else { return }
        memcpy(next, source, bytes.count)
        next += bytes.count
    }
}

extension Array where Element == UInt8 {
    /// Appends `count` bytes written by `body` into room made for them first; `body`
    /// must fill it exactly.
    mutating func append(count: Int, writtenBy body: (inout ByteWriter) -> Void) {
        guard count > 0 else { return }
        let start = self.count
        append(contentsOf: repeatElement(0, count: count))
        withUnsafeMutableBufferPointer { buffer in
            var writer = ByteWriter(UnsafeMutableBufferPointer(rebasing: buffer[start...]))
            body(&writer)
            precondition(writer.isFull, "ByteWriter: room left unwritten")  // safe: see the type's note
        }
    }
}
