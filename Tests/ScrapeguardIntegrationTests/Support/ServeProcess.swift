import Foundation

/// `scrapeguard serve` as a real child process, for what only a process shows:
/// signals, exit codes, logs, reloads.
final class ServeProcess {
    let process = Process()
    let port: Int
    let healthPort: Int
    let logFile: URL
    let folder: URL

    /// Starts serve with web-config and scrapeguard.yml files in `folder`, and waits
    /// until the health port answers.
    /// `launcher` runs before the binary (`strace -o FILE`, say).
    init(folder: URL, webConfigFile: String, configFile: String, extraArguments: [String] = [],
         launcher: [String] = []) async throws {
        self.folder = folder
        port = try await freePort()
        healthPort = try await freePort()
        logFile = folder.appendingPathComponent("serve-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: launcher.isEmpty ? Repository.binary : "/usr/bin/env")
        process.arguments = (launcher.isEmpty ? [] : launcher + [Repository.binary]) + [
            "serve", "--web.config.file=\(webConfigFile)", "--config.file=\(configFile)",
            "--web.listen-address=127.0.0.1:\(port)", "--health.listen-address=127.0.0.1:\(healthPort)",
        ] + extraArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: logFile)
        try process.run()
        for _ in 0..<100 {
            if (try? await health("/healthz").status) == 200 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "serve did not start: \(log)"])
    }

    var baseURL: String { "https://127.0.0.1:\(port)" }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    func health(_ path: String) async throws -> (status: Int, body: String) {
        let result = try await ProcessRunner.run([
            "curl", "--silent", "--max-time", "5", "--write-out", "\n%{http_code}", "http://127.0.0.1:\(healthPort)\(path)",
        ])
        let lines = result.stdoutText.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits for the process to exit, up to `timeout`; returns its status, or nil if
    /// it is still running (then it is killed).
    func waitForExit(timeout: Duration) async throws -> Int32? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while process.isRunning && clock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationReason == .exit ? process.terminationStatus : -process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
    }
}

/// Writes a gateway config pair into a new folder; returns the folder and the files.
func writeServeConfig(web: String = TestGateway.defaultWebConfig(), gateway: String) throws -> (URL, String, String) {
    let folder = try makeTemporaryFolder("sg-serve")
    let webFile = folder.appendingPathComponent("web-config.yml").path
    let configFile = folder.appendingPathComponent("scrapeguard.yml").path
    try web.write(toFile: webFile, atomically: true, encoding: .utf8)
    try gateway.write(toFile: configFile, atomically: true, encoding: .utf8)
    return (folder, webFile, configFile)
}

/// Runs Python with a script given inline; arguments follow.
func python(_ script: String, _ arguments: [String], timeout: TimeInterval = 60) async throws -> ProcessResult {
    try await ProcessRunner.run(["python3", "-c", script] + arguments, timeout: timeout)
}
