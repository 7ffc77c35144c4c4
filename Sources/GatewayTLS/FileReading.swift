#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads small text files (certificates, keys, configuration) with POSIX calls, so
/// the TLS target needs no Foundation.
package enum FileReading {
    package struct Failure: Error, Sendable {
        package var reason: String
    }

    /// The largest file read: certificates and configs are far smaller.
    package static let maximumSize = 4 << 20

    package static func readText(_ path: String) throws(Failure) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw Failure(reason: String(cString: strerror(errno)).lowercased())
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw Failure(reason: String(cString: strerror(errno)).lowercased())
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            throw Failure(reason: "is a directory")
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
