import Foundation
@_exported import TestSupport

/// Runs a real program (curl, openssl, python3, the scrapeguard binary) and captures
/// what it printed. Output goes through files, so a chatty program never blocks on
/// a full pipe.
struct ProcessResult {
    var status: Int32
    var stdout: Data
    var stderr: String

    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
}

enum ProcessRunner {
    /// Runs a program to its end without holding a thread of Swift's cooperative pool
    /// (tests run in parallel on two cores: a blocked pool would stall their clocks).
    static func run(_ arguments: [String], stdin: Data? = nil, timeout: TimeInterval = 60) async throws -> ProcessResult {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sg-proc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let outURL = folder.appendingPathComponent("out")
        let errURL = folder.appendingPathComponent("err")
        let inURL = folder.appendingPathComponent("in")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: inURL.path, contents: stdin ?? Data())
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        let input = try FileHandle(forReadingFrom: inURL)

        let process = Process()
        // coreutils' timeout bounds every program, whatever it waits for.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["timeout", "-k", "5", "\(Int(timeout.rounded(.up)))"] + arguments
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            process.terminationHandler = { _ in continuation.resume() }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume()
            }
        }
        try out.close()
        try err.close()
        try input.close()
        return ProcessResult(
            status: process.isRunning ? -1 : process.terminationStatus,
            stdout: try Data(contentsOf: outURL),
            stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }

    /// The same, blocking: only for one-time set-up outside async code.
    static func runBlocking(_ arguments: [String]) -> ProcessResult {
        let process = Process()
        let pipe = Pipe()
        let errors = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = pipe
        process.standardError = errors
        do { try process.run() } catch { return ProcessResult(status: -1, stdout: Data(), stderr: "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus, stdout: data, stderr: String(decoding: errorData, as: UTF8.self))
    }

    /// Whether a program is on PATH.
    static func has(_ program: String) -> Bool {
        runBlocking(["sh", "-c", "command -v \(program)"]).status == 0
    }
}

extension Repository {
    /// The built `scrapeguard` executable next to the test bundle.
    static var binary: String {
        let candidates = [
            Bundle.main.bundleURL.appendingPathComponent("scrapeguard").path,
            Bundle(for: BundleMarker.self).bundleURL.deletingLastPathComponent().appendingPathComponent("scrapeguard").path,
            root.appendingPathComponent(".build/debug/scrapeguard").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }
}

private final class BundleMarker {}

