import Foundation
import Logging

/// How log lines are written: logfmt (the default, as Prometheus' own tools write) or
/// one JSON object a line. Either way, one line per event on standard error. Nothing
/// a client sent (header values, credentials) is ever passed to a logger.
package enum LogFormat: String, Sendable, CaseIterable {
    case logfmt
    case json

    /// Installs this format and `level` as the process's logging backend.
    package func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            StructuredLogHandler(label: label, format: self, logLevel: level)
        }
    }
}

/// A swift-log handler that writes logfmt or JSON lines to standard error.
package struct StructuredLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level
    private let label: String
    private let format: LogFormat

    package init(label: String, format: LogFormat, logLevel: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = logLevel
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("time", Self.timestamp()), ("level", event.level.rawValue), ("logger", label), ("msg", event.message.description),
        ]
        var merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        if let error = event.error { merged["error"] = "\(error)" }
        for key in merged.keys.sorted() {
            fields.append((key, merged[key]!.description))
        }
        let text = format == .json ? Self.json(fields) : Self.logfmt(fields)
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func logfmt(_ fields: [(String, String)]) -> String {
        fields.map { key, value in
            let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0.isNewline }
            guard needsQuotes else { return "\(key)=\(value)" }
            let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
            return "\(key)=\"\(escaped)\""
        }.joined(separator: " ")
    }

    static func json(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\(quote($0)):\(quote($1))" }.joined(separator: ",") + "}"
    }

    private static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private static func timestamp() -> String {
        Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}
