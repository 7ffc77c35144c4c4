import Foundation

extension Repository {
    public static var certsScript: String { root.appendingPathComponent("certs/gen-dev-certs.sh").path }
}

/// A fresh throwaway PKI made by the project's own script, once per test process,
/// so no key lives in the repository: the dev CA, server and Prometheus client
/// certificates and the negative-test ones (another CA, a wrong SAN, an expired
/// client). Making it spawns `openssl` once; the tests that use it stay in memory.
public struct TestPKI: Sendable {
    public let folder: String

    public static let shared: TestPKI = {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-pki-\(UUID().uuidString)").path
        let process = Process()
        let errors = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["bash", Repository.certsScript, "--test-extras", folder]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        do { try process.run() } catch { fatalError("cannot run gen-dev-certs.sh: \(error)") }
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        precondition(process.terminationStatus == 0,
                     "gen-dev-certs.sh failed: \(String(decoding: stderr, as: UTF8.self))")
        return TestPKI(folder: folder)
    }()

    public func path(_ name: String) -> String { "\(folder)/\(name)" }

    /// The text of one of its files.
    public func text(_ name: String) throws -> String {
        try String(contentsOfFile: path(name), encoding: .utf8)
    }
}
