import GatewayTLS
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// Everything `GatewayServer` needs: the two configuration files, already read.
public struct GatewayServerSettings: Sendable {
    public var web: WebConfiguration
    public var gateway: GatewayConfiguration
    public var listenHost: String
    public var listenPort: Int
    public var handshakeTimeout: Duration
    public var filter: any ScrapeBodyFilter

    public init(
        web: WebConfiguration, gateway: GatewayConfiguration, listenHost: String = "0.0.0.0", listenPort: Int = 9443,
        handshakeTimeout: Duration = .seconds(10), filter: any ScrapeBodyFilter = IdentityScrapeFilter()
    ) {
        self.web = web
        self.gateway = gateway
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.handshakeTimeout = handshakeTimeout
        self.filter = filter
    }
}

/// The HTTPS listener: TLS through OpenSSL, HTTP/1.1, auth, proxy. Runs as a
/// swift-service-lifecycle `Service`, or is started and stopped by hand in tests.
public final class GatewayServer: Service, Sendable {
    public let settings: GatewayServerSettings
    public let authenticator: BasicAuthenticator
    private let group: EventLoopGroup
    private let threadPool: NIOThreadPool
    private let tlsContext: NIOLockedValueBox<TLSContext>
    private let policy: GatewayRequestPolicy
    private let serverChannel = NIOLockedValueBox<Channel?>(nil)
    private let handshakeFailures = NIOLockedValueBox<[String: Int]>([:])
    private let logger: Logger

    /// Builds the TLS context and everything else that can fail before binding.
    public init(settings: GatewayServerSettings, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) throws {
        self.settings = settings
        self.group = group
        self.logger = logger
        self.tlsContext = NIOLockedValueBox(try TLSContext(configuration: settings.web.tls))
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        self.threadPool = pool
        self.authenticator = BasicAuthenticator(users: settings.web.basicAuthUsers, pool: pool)
        self.policy = GatewayRequestPolicy(
            authenticator: authenticator,
            rateLimiter: settings.web.rateLimit.map { RateLimiter(interval: $0.interval, burst: $0.burst) },
            upstream: UpstreamClient(configuration: settings.gateway.upstream),
            filter: settings.filter,
            metricsPath: settings.gateway.metricsPath,
            responseHeaders: settings.web.headers.map { ($0.name, $0.value) },
            logger: logger)
    }

    /// Handshake failures so far, by reason.
    public var handshakeFailuresByReason: [String: Int] {
        handshakeFailures.withLockedValue { $0 }
    }

    /// Binds and starts accepting; returns the bound address (port 0 picks one).
    @discardableResult
    public func start() async throws -> SocketAddress {
        let policy = self.policy
        let tlsContext = self.tlsContext
        let handshakeTimeout = TimeAmount.nanoseconds(settings.handshakeTimeout.nanoseconds)
        let logger = self.logger
        let failures = self.handshakeFailures
        let onFailure: TLSServerHandler.FailureObserver = { failure in
            failures.withLockedValue { $0[failure.reason, default: 0] += 1 }
        }
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let context = tlsContext.withLockedValue { $0 }
                    try channel.pipeline.syncOperations.addHandler(
                        TLSServerHandler(context: context, handshakeTimeout: handshakeTimeout, logger: logger, onFailure: onFailure))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(GatewayHTTPHandler(policy: policy))
                }
            }
            .bind(host: settings.listenHost, port: settings.listenPort)
            .get()
        serverChannel.withLockedValue { $0 = channel }
        logger.info("listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        return channel.localAddress!
    }

    /// Stops accepting and closes the listener.
    public func stop() async {
        let channel = serverChannel.withLockedValue { channel in
            defer { channel = nil }
            return channel
        }
        try? await channel?.close()
    }

    /// Releases the bcrypt thread pool. Call once, after `stop()`.
    public func shutdown() async {
        try? await threadPool.shutdownGracefully()
    }

    /// Serves until graceful shutdown (SIGTERM/SIGINT through the service group).
    public func run() async throws {
        let address = try await start()
        _ = address
        try? await gracefulShutdown()
        logger.info("shutting down")
        await stop()
        await shutdown()
    }
}
