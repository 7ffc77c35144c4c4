import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reloads certificates, keys, client CAs, users and the gateway configuration
/// without a restart: on SIGHUP, and when a watched file changes (a stat poll, which
/// also sees Kubernetes' Secret updates, where a `..data` symlink is swapped to a new
/// folder). A reload is all or nothing: both files are read and the new TLS context
/// is built before anything is swapped; on any failure the old configuration keeps
/// serving, the reason is logged and `scrapeguard_reloads_total{result="failure"}`
/// counts it.
public final class ConfigurationReloader: Service, Sendable {
    public typealias Loader = @Sendable () throws -> (WebConfiguration, GatewayConfiguration)

    private let server: GatewayServer
    private let webConfigFile: String
    private let configFile: String
    private let load: Loader
    private let pollInterval: Duration?
    private let logger: Logger
    private let watched: NIOLockedValueBox<[String: FileFingerprint?]>

    /// - Parameters:
    ///   - load: reads both files (and applies command-line overrides).
    ///   - current: the web configuration now in use, for the certificate paths to watch.
    ///   - pollInterval: how often files are checked; nil for SIGHUP only.
    public init(server: GatewayServer, webConfigFile: String, configFile: String, current: WebConfiguration,
                pollInterval: Duration? = .seconds(5), logger: Logger, load: @escaping Loader) {
        self.server = server
        self.webConfigFile = webConfigFile
        self.configFile = configFile
        self.load = load
        self.pollInterval = pollInterval
        self.logger = logger
        self.watched = NIOLockedValueBox(Self.fingerprints(Self.paths(webConfigFile, configFile, current)))
    }

    public func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in hangups {
                    self.logger.info("SIGHUP: reloading")
                    self.reload()
                }
            }
            if let pollInterval { group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: pollInterval)
                    if Task.isCancelled { break }
                    self.reloadIfChanged()
                }
            } }
            // Ends with graceful shutdown (or cancellation): the other tasks go too.
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }

    /// Reloads when any watched file's identity or contents changed since last looked at.
    public func reloadIfChanged() {
        let changed = watched.withLockedValue { watched in
            watched.contains { path, fingerprint in FileFingerprint(path: path) != fingerprint }
        }
        if changed {
            logger.info("configuration or certificate files changed: reloading")
            reload()
        }
    }

    /// Loads everything and swaps it in, or keeps what runs and says why.
    @discardableResult
    public func reload() -> Bool {
        do {
            let (web, gateway) = try load()
            try server.apply(web: web, gateway: gateway)
            watched.withLockedValue { $0 = Self.fingerprints(Self.paths(webConfigFile, configFile, web)) }
            server.metrics.reloaded(success: true)
            logger.info("reloaded", metadata: ["certificate_serial_expiry": "\(server.tlsContext.certificateNotAfter)"])
            return true
        } catch {
            // Remember what was seen, so a broken file is reported once, not every poll.
            watched.withLockedValue { watched in
                for path in watched.keys { watched[path] = FileFingerprint(path: path) }
            }
            server.metrics.reloaded(success: false)
            logger.error("reload failed; the previous configuration keeps serving", metadata: ["error": "\(error)"])
            return false
        }
    }

    private static func paths(_ webConfigFile: String, _ configFile: String, _ web: WebConfiguration) -> [String] {
        var paths = [webConfigFile, configFile]
        for source in [web.tls.certificateChain, web.tls.privateKey] + (web.tls.clientCA.map { [$0] } ?? []) {
            if case .file(let path) = source { paths.append(path) }
        }
        return paths
    }

    private static func fingerprints(_ paths: [String]) -> [String: FileFingerprint?] {
        Dictionary(paths.map { ($0, FileFingerprint(path: $0)) }, uniquingKeysWith: { first, _ in first })
    }
}

/// What identifies a file's contents cheaply: `stat` through symlinks, so a swapped
/// `..data` link shows up as another inode.
struct FileFingerprint: Hashable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modified: Int64
    var modifiedNanoseconds: Int64
    var changed: Int64

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int64(info.st_size)
        modified = Int64(info.st_mtim.tv_sec)
        modifiedNanoseconds = Int64(info.st_mtim.tv_nsec)
        changed = Int64(info.st_ctim.tv_sec)
    }
}
