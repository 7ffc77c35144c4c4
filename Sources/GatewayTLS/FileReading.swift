#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads small text files (certificates, keys, configuration) with POSIX calls, so
/// the TLS target needs no Foundation.
///
/// Regular files only, and never a blocking open: the file is opened with
/// `O_NONBLOCK` (opening a FIFO that way returns at once instead of waiting for a
/// writer) and refused unless `fstat` says it is a regular file. A FIFO, device,
/// socket or directory named by mistake is an error naming what it is, so that
/// neither `check-config` nor a reload can hang the process or its shutdown.
package enum FileReading {
    package struct Failure: Error, Sendable {
        package var reason: String
    }

    /// The largest file read: certificates and configs are far smaller.
    package static let maximumSize = 4 << 20

    package static func readText(_ path: String) throws(Failure) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard descriptor >= 0 else {
            throw Failure(reason: String(cString: strerror(errno)).lowercased())
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw Failure(reason: String(cString: strerror(errno)).lowercased())
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw Failure(reason: "is a directory")
        case S_IFIFO: throw Failure(reason: "is a FIFO, not a regular file")
        case S_IFSOCK: throw Failure(reason: "is a socket, not a regular file")
        case S_IFCHR, S_IFBLK: throw Failure(reason: "is a device, not a regular file")
        default: throw Failure(reason: "is not a regular file")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(reason: String(cString: strerror(errno)).lowercased())
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            if bytes.count > maximumSize {
                throw Failure(reason: "larger than \(maximumSize) bytes")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
