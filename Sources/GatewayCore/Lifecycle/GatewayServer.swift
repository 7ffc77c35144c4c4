import GatewayTLS
import MetricsFilter
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// Everything `GatewayServer` needs: the two configuration files, already read, and
/// what the command line sets.
package struct GatewayServerSettings: Sendable {
    package var web: WebConfiguration
    package var gateway: GatewayConfiguration
    package var listenHost: String
    package var listenPort: Int
    /// How long a drain waits for in-flight scrapes before closing what is left.
    package var shutdownTimeout: Duration

    package init(
        web: WebConfiguration, gateway: GatewayConfiguration, listenHost: String = "0.0.0.0", listenPort: Int = 9443,
        shutdownTimeout: Duration = .seconds(15)
    ) {
        self.web = web
        self.gateway = gateway
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.shutdownTimeout = shutdownTimeout
    }
}

/// The HTTPS listener: TLS through OpenSSL, HTTP/1.1, auth, proxy, own metrics. Runs
/// as a swift-service-lifecycle `Service` (graceful shutdown drains it), or is started
/// and stopped by hand in tests. `apply(_:)` swaps in a new configuration snapshot
/// whole; open connections keep what they started with.
///
/// About 320 lines: the configuration it applies, each connection's pipeline and
/// the lifecycle live together because they share the locked `Active` state; the
/// listener, the health port, admission and the drain's wait are types of their own.
///
/// ```
/// initialized ─start→ serving ─drain→ draining ─last connection closed, or timeout→ stopped
///                        └──────────────────── stop (close everything) ──────────────┘
/// ```
package final class GatewayServer: Service, Sendable {
    private enum Lifecycle {
        case initialized
        case serving
        case draining
        case stopped
    }

    /// A lifecycle step taken out of order (`start` twice, `start` after a drain).
    package struct LifecycleError: Error, CustomStringConvertible {
        package var description: String
    }

    /// What one connection is set up with; replaced whole by a reload.
    private struct Active {
        var tlsContext: TLSContext
        var policy: GatewayRequestPolicy
        var limits: ServerLimits
        /// What the policy was built from, to keep what a reload does not change.
        var web: WebConfiguration
    }

    package let metrics: GatewayMetrics
    package let health: GatewayHealth
    private let settings: GatewayServerSettings
    private let group: EventLoopGroup
    private let threadPool: NIOThreadPool
    /// The bytes buffered toward scrapers, over every connection and every reload.
    package let outbound: OutboundBudget
    private let active: NIOLockedValueBox<Active>
    private let connections = ConnectionTracker()
    private let listener: HTTPListener
    private let lifecycle = NIOLockedValueBox(Lifecycle.initialized)
    private let handshakeFailures = NIOLockedValueBox<[String: Int]>([:])
    private let logger: Logger

    /// Builds the TLS context (unless the caller has one, from `ConfigurationLoader`)
    /// and everything else that can fail before binding.
    package init(
        settings: GatewayServerSettings, tlsContext: TLSContext? = nil,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metrics: GatewayMetrics = GatewayMetrics(), logger: Logger
    ) throws {
        self.settings = settings
        self.group = group
        self.logger = logger
        self.metrics = metrics
        self.health = GatewayHealth()
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        self.threadPool = pool
        let outbound = OutboundBudget(limit: settings.gateway.limits.maximumBufferedBytes)
        self.outbound = outbound
        let tlsContext = try tlsContext ?? TLSContext(configuration: settings.web.tls)
        self.active = NIOLockedValueBox(Active(
            tlsContext: tlsContext,
            policy: Self.makePolicy(settings.web, settings.gateway, pool: pool, outbound: outbound,
                                    metrics: metrics, health: health, logger: logger),
            limits: settings.gateway.limits,
            web: settings.web))
        self.listener = HTTPListener(group: group)
        metrics.certificatesInUse(tlsContext)
        health.certificatesLoaded()
    }

    /// The request policy for a configuration. What `previous` was built from and the
    /// new configuration leave unchanged is kept: the authenticator (and its verdict
    /// cache), the rate limiter (and its tokens), the upstream client (and its idle
    /// connections); the series tracker when the limits allow (`PolicyScrapeFilter`).
    private static func makePolicy(
        _ web: WebConfiguration, _ gateway: GatewayConfiguration, pool: NIOThreadPool, outbound: OutboundBudget,
        metrics: GatewayMetrics, health: GatewayHealth, logger: Logger, previous: Active? = nil
    ) -> GatewayRequestPolicy {
        var authenticator = BasicAuthenticator(users: web.basicAuthUsers, pool: pool)
        var rateLimiter = web.rateLimit.map { RateLimiter(interval: $0.interval, burst: $0.burst) }
        var upstream = UpstreamClient(configuration: gateway.upstream)
        if let previous {
            if previous.web.basicAuthUsers == web.basicAuthUsers { authenticator = previous.policy.authenticator }
            if previous.web.rateLimit == web.rateLimit { rateLimiter = previous.policy.rateLimiter }
            if previous.policy.upstream.configuration == gateway.upstream { upstream = previous.policy.upstream }
        }
        return GatewayRequestPolicy(
            authenticator: authenticator,
            rateLimiter: rateLimiter,
            upstream: upstream,
            fetcher: upstream,
            filter: PolicyScrapeFilter(policy: gateway.filter, metrics: metrics,
                                       previous: previous?.policy.filter as? PolicyScrapeFilter),
            metricsPath: gateway.metricsPath,
            maximumRequestLine: gateway.limits.maximumRequestLine,
            responseHeaders: web.headers.map { ($0.name, $0.value) },
            outbound: outbound,
            metrics: metrics,
            health: health,
            logger: logger)
    }

    /// The basic-auth checker new connections use.
    package var authenticator: BasicAuthenticator { active.withLockedValue { $0.policy.authenticator } }

    /// The TLS context new connections use.
    package var tlsContext: TLSContext { active.withLockedValue { $0.tlsContext } }

    /// Handshake failures so far, by reason.
    package var handshakeFailuresByReason: [String: Int] {
        handshakeFailures.withLockedValue { $0 }
    }

    package var openConnections: Int { connections.count }

    /// Swaps in a loaded configuration for new connections: certificates, users,
    /// upstream, limits and filter policy. Everything in it was built and checked by
    /// `ConfigurationLoader`, so this cannot fail. Listen addresses are not reloadable.
    package func apply(_ snapshot: ConfigurationSnapshot) {
        let previous = active.withLockedValue { $0 }
        outbound.setLimit(snapshot.gateway.limits.maximumBufferedBytes)
        let policy = Self.makePolicy(snapshot.web, snapshot.gateway, pool: threadPool, outbound: outbound, metrics: metrics,
                                     health: health, logger: logger, previous: previous)
        active.withLockedValue { active in
            active = Active(tlsContext: snapshot.tlsContext, policy: policy, limits: snapshot.gateway.limits,
                            web: snapshot.web)
        }
        if previous.policy.upstream !== policy.upstream {
            previous.policy.upstream.closeIdleConnections()
        }
        metrics.certificatesInUse(snapshot.tlsContext)
    }

    /// The health port's server, reading this gateway's state: a `Service` of its own,
    /// on the same event loops.
    package func makeHealthServer(host: String, port: Int) -> HealthServer {
        let active = self.active
        return HealthServer(health: health, upstream: { active.withLockedValue { $0.policy.upstream } },
                            host: host, port: port, group: group, logger: logger)
    }

    /// Binds and starts accepting; returns the bound address (port 0 picks one).
    @discardableResult
    package func start() async throws -> SocketAddress {
        try moveLifecycle(from: .initialized, to: .serving, "start")
        let active = self.active
        let connections = self.connections
        let metrics = self.metrics
        let logger = self.logger
        let failures = self.handshakeFailures
        let onFailure: TLSServerHandler.FailureObserver = { failure in
            failures.withLockedValue { $0[failure.reason, default: 0] += 1 }
            metrics.handshakeFailed(reason: failure.reason)
        }
        let onLimit: @Sendable (ConnectionLimit) -> Void = { limit in
            if limit == .handshakeTimeout {
                logger.info("TLS connection failed", metadata: ["reason": "handshake timeout"])
                onFailure(TLSFailure(reason: "handshake timeout",
                                     error: TLSError(.handshakeTimeout, "the client did not finish its handshake in time")))
            } else {
                metrics.connectionRejected(limit)
            }
        }
        let address: SocketAddress
        do {
            address = try await bind(active: active, connections: connections, metrics: metrics, logger: logger,
                                     onFailure: onFailure, onLimit: onLimit)
        } catch {
            lifecycle.withLockedValue { $0 = .initialized }  // nothing listens: start may be tried again
            throw error
        }
        logger.info("listening", metadata: ["address": "\(address)"])
        return address
    }

    private func bind(active: NIOLockedValueBox<Active>, connections: ConnectionTracker, metrics: GatewayMetrics,
                      logger: Logger, onFailure: @escaping TLSServerHandler.FailureObserver,
                      onLimit: @escaping @Sendable (ConnectionLimit) -> Void) async throws -> SocketAddress {
        try await listener.bind(host: settings.listenHost, port: settings.listenPort) { channel in
            let current = active.withLockedValue { $0 }
            let source = channel.remoteAddress?.ipAddress ?? "unknown"
            switch connections.add(channel, source: source, limits: current.limits.admission) {
            case .refuse(let limit):
                metrics.connectionRejected(limit)
                return channel.close()
            case .admit(let evictions):
                for eviction in evictions { metrics.connectionRejected(eviction.reason) }
            }
            metrics.connectionOpened()
            channel.closeFuture.whenComplete { _ in metrics.connectionClosed() }
            return channel.eventLoop.makeCompletedFuture {
                if current.limits.socketSendBuffer > 0 {
                    try channel.syncOptions?.setOption(.socketOption(.so_sndbuf),
                                                       value: SocketOptionValue(current.limits.socketSendBuffer))
                }
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(TLSServerHandler(context: current.tlsContext, logger: logger,
                                                     onFailure: onFailure))
                try sync.addHandler(ConnectionLimitsHandler(
                    handshakeTimeout: .nanoseconds(current.limits.handshakeTimeout.nanoseconds),
                    readHeaderTimeout: .nanoseconds(current.limits.readHeaderTimeout.nanoseconds),
                    writeTimeout: .nanoseconds(current.limits.writeTimeout.nanoseconds),
                    idleTimeout: .nanoseconds(current.limits.idleTimeout.nanoseconds),
                    maximumHeaderBytes: current.limits.maximumHeaderBytes,
                    onLimit: onLimit))
                try sync.configureHTTPServerPipeline(withErrorHandling: true)
                try sync.addHandler(GatewayHTTPHandler(policy: current.policy, onProven: { [weak channel] in
                    if let channel { connections.proved(channel) }
                }))
            }
        }
    }

    /// Graceful drain: readiness turns false, the listener closes, idle keep-alive
    /// connections close at once, in-flight scrapes finish (their responses say
    /// `Connection: close`). After `shutdownTimeout`, or at once if the task is
    /// cancelled (a second signal), whatever is left is closed.
    package func drain() async {
        guard (try? moveLifecycle(from: .serving, to: .draining, "drain")) != nil else { return }
        await stopListening()
        let open = connections.count
        logger.info("draining", metadata: ["open_connections": "\(open)"])
        connections.quiesceAll()
        let connections = self.connections
        let drained = await withTaskCancellationHandler {
            await connections.waitUntilEmpty(timeout: settings.shutdownTimeout)
        } onCancel: {
            connections.closeAll()
        }
        if !drained {
            logger.warning("drain ended before every connection finished; closing the rest",
                           metadata: ["open_connections": "\(connections.count)"])
            connections.closeAll()
            _ = await connections.waitUntilEmpty(timeout: .seconds(1))
        }
        lifecycle.withLockedValue { $0 = .stopped }
    }

    /// Stops accepting and closes every connection at once (tests).
    package func stop() async {
        lifecycle.withLockedValue { $0 = .stopped }
        await stopListening()
        connections.closeAll()
    }

    /// Readiness false, then the listener closed: no new connection gets in.
    private func stopListening() async {
        health.startDraining()
        await listener.close()
    }

    private func moveLifecycle(from expected: Lifecycle, to next: Lifecycle, _ step: String) throws(LifecycleError) {
        let found = lifecycle.withLockedValue { state -> Lifecycle in
            defer { if state == expected { state = next } }
            return state
        }
        guard found == expected else {
            throw LifecycleError(description: "cannot \(step) a gateway server that is \(found)")
        }
    }

    /// Releases the bcrypt thread pool. Call once, after `stop()` or `drain()`.
    package func shutdown() async {
        try? await threadPool.shutdownGracefully()
    }

    /// Serves until graceful shutdown (the first SIGTERM or SIGINT), then drains. A
    /// second signal during the drain closes whatever is left at once.
    package func run() async throws {
        try await start()
        try? await gracefulShutdown()
        logger.info("shutting down")
        let connections = self.connections
        let logger = self.logger
        // Subscribed only now, so the signal that started the drain is not counted.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in signals {
                    logger.warning("second signal: closing every connection now")
                    connections.closeAll()
                    break
                }
            }
            await drain()
            group.cancelAll()
        }
        await shutdown()
        logger.info("stopped")
    }
}
