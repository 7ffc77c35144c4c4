import ArgumentParser
import GatewayCore
import GatewayTLS
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a line to standard output at once, so that it keeps its place among the
/// output of programs the command runs.
func say(_ message: String) {
    writeLine(message, to: STDOUT_FILENO)
}

func printError(_ message: String) {
    writeLine(message, to: STDERR_FILENO)
}

private func writeLine(_ message: String, to descriptor: Int32) {
    writeAll(Array((message + "\n").utf8), to: descriptor)
}

/// Writes every byte, however many calls it takes.
func writeAll(_ data: [UInt8], to descriptor: Int32) {
    data.withUnsafeBytes { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }
}

enum Logging {
    static func make(level: String, format: String) throws -> Logger {
        guard let level = Logger.Level(rawValue: level) else {
            throw ValidationError("--log.level: one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let format = LogFormat(rawValue: format) else {
            throw ValidationError("--log.format: logfmt or json")
        }
        format.bootstrap(level: level)
        return Logger(label: "scrapeguard")
    }
}

enum DurationFlag {
    /// A Prometheus-style duration flag such as `15s` or `500ms`.
    static func parse(_ text: String, flag: String) throws -> Duration {
        guard let duration = GatewayConfiguration.parseDuration(text) else {
            throw ValidationError("\(flag): invalid duration \"\(text)\" (use e.g. 15s, 1m, 500ms)")
        }
        return duration
    }
}

enum ConfigurationFlags {
    /// The sources the flags name, `--upstream.url` checked here, once.
    static func sources(webConfigFile: String, configFile: String, upstreamURL: String?) throws -> ConfigurationSources {
        var url: UpstreamURL?
        if let upstreamURL {
            do {
                url = try UpstreamURL(parsing: upstreamURL)
            } catch {
                throw ValidationError("--upstream.url: \(error.reason)")
            }
        }
        return ConfigurationSources(webConfigFile: webConfigFile, configFile: configFile, upstreamURL: url)
    }
}

enum ListenAddress {
    /// `HOST:PORT`, `:PORT` (all interfaces) or `[::1]:PORT`.
    static func parse(_ text: String, flag: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":") else {
            throw ValidationError("\(flag): expected HOST:PORT, got \"\(text)\"")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "0.0.0.0" }
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("\(flag): invalid port in \"\(text)\"")
        }
        return (host, port)
    }
}
