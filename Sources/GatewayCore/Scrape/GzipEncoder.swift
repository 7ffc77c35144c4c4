internal import CZlib
import NIOCore

/// gzip for a response body, chunk by chunk, through zlib's deflate (level 1: scrape
/// bodies compress well and the CPU goes to filtering).
final class GzipEncoder {
    private var stream = z_stream()
    private var finished = false

    init?() {
        let result = deflateInit2_(&stream, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
                                   Int32(MemoryLayout<z_stream>.size))
        guard result == Z_OK else { return nil }
    }

    deinit {
        deflateEnd(&stream)
    }

    /// Compresses `input`; with `finish`, ends the gzip member.
    func encode(_ input: ByteBuffer?, finish: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        var output = allocator.buffer(capacity: max(256, (input?.readableBytes ?? 0) / 2))
        guard !finished else { return output }
        var input = input ?? allocator.buffer(capacity: 0)
        input.withUnsafeMutableReadableBytes { source in
            stream.next_in = source.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.avail_in = uInt(source.count)
            repeat {
                output.reserveCapacity(minimumWritableBytes: 16384)
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: 16384) { target in
                    stream.next_out = target.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(target.count)
                    _ = deflate(&stream, finish ? Z_FINISH : Z_NO_FLUSH)
                    return target.count - Int(stream.avail_out)
                }
            } while stream.avail_out == 0 || (finish && stream.avail_in > 0)
        }
        if finish { finished = true }
        return output
    }

    /// Whether an `Accept-Encoding` value accepts gzip (`gzip` or `*`, not with `q=0`).
    static func accepts(_ header: String?) -> Bool {
        guard let header else { return false }
        for part in header.split(separator: ",") {
            let pieces = part.split(separator: ";").map { $0.trimmingSpaces.lowercased() }
            guard let coding = pieces.first, coding == "gzip" || coding == "x-gzip" || coding == "*" else { continue }
            if !pieces.dropFirst().contains(where: isQualityZero) { return true }
        }
        return false
    }

    /// A `q` parameter of zero (`q=0`, `q = 0.000`): the coding is refused. Read as
    /// `MediaRange.quality` reads an `Accept` clause's.
    private static func isQualityZero(_ parameter: String) -> Bool {
        let pair = parameter.split(separator: "=", maxSplits: 1)
        return pair.count == 2 && pair[0].trimmingSpaces == "q" && Double(pair[1].trimmingSpaces) == 0
    }
}
