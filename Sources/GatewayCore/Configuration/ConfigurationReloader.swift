import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reloads certificates, keys, client CAs, users, the PII key and the gateway
/// configuration without a restart: on SIGHUP, and when a file the last load read
/// changes (a stat poll, which also sees Kubernetes' Secret updates, where a `..data`
/// symlink is swapped to a new folder). A reload is all or nothing: the loader builds
/// a whole snapshot before anything is swapped; on any failure the old configuration
/// keeps serving, the reason is logged and `scrapeguard_reloads_total{result="failure"}`
/// counts it.
package final class ConfigurationReloader: Service, Sendable {
    private let server: GatewayServer
    private let sources: ConfigurationSources
    private let pollInterval: Duration?
    private let logger: Logger
    private let watched: NIOLockedValueBox<[String: FileFingerprint?]>

    /// - Parameters:
    ///   - sources: what `ConfigurationLoader` reads at each reload.
    ///   - current: the snapshot now in use: its files are the ones watched.
    ///   - pollInterval: how often files are checked; nil for SIGHUP only.
    package init(server: GatewayServer, sources: ConfigurationSources, current: ConfigurationSnapshot,
                pollInterval: Duration? = .seconds(5), logger: Logger) {
        self.server = server
        self.sources = sources
        self.pollInterval = pollInterval
        self.logger = logger
        self.watched = NIOLockedValueBox(Self.fingerprints(current.files))
    }

    /// The files a change of which reloads.
    package var watchedFiles: [String] {
        watched.withLockedValue { $0.keys.sorted() }
    }

    package func run() async throws {
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
    package func reloadIfChanged() {
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
    package func reload() -> Bool {
        do {
            let snapshot = try ConfigurationLoader.load(sources)
            server.apply(snapshot)
            watched.withLockedValue { $0 = Self.fingerprints(snapshot.files) }
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
