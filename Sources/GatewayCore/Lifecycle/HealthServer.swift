import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// The plain-HTTP port the kubelet probes: `/healthz` (the process serves) and
/// `/readyz` (certificates loaded, the app answered a scrape in the last seconds or
/// accepts a connection now, not draining). No auth, no metrics, nothing secret:
/// only a status word.
///
/// A `Service` of its own, on the gateway's event loops. Listed before the gateway in
/// the service group, it shuts down after the gateway's drain: the kubelet reads
/// `not ready: draining` for as long as the drain lasts.
package final class HealthServer: Service, Sendable {
    private let health: GatewayHealth
    private let upstream: @Sendable () -> UpstreamClient
    private let host: String
    private let port: Int
    private let listener: HTTPListener
    private let logger: Logger

    init(health: GatewayHealth, upstream: @escaping @Sendable () -> UpstreamClient, host: String, port: Int,
         group: EventLoopGroup, logger: Logger) {
        self.health = health
        self.upstream = upstream
        self.host = host
        self.port = port
        self.listener = HTTPListener(group: group)
        self.logger = logger
    }

    /// Serves until graceful shutdown.
    package func run() async throws {
        let address = try await start()
        logger.info("health endpoints listening", metadata: ["address": "\(address)"])
        try? await gracefulShutdown()
        await stop()
    }

    /// Binds and starts answering; returns the bound address (port 0 picks one).
    package func start() async throws -> SocketAddress {
        let health = self.health
        let upstream = self.upstream
        return try await listener.bind(host: host, port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                try channel.pipeline.syncOperations.addHandler(HealthHandler(health: health, upstream: upstream))
            }
        }
    }

    package func stop() async {
        await listener.close()
    }
}

private final class HealthHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let health: GatewayHealth
    private let upstream: @Sendable () -> UpstreamClient
    private var head: HTTPRequestHead?
    private var context: ChannelHandlerContext?

    init(health: GatewayHealth, upstream: @escaping @Sendable () -> UpstreamClient) {
        self.health = health
        self.upstream = upstream
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            guard head.method == .GET || head.method == .HEAD else {
                respond(.methodNotAllowed, "method not allowed\n")
                return
            }
            switch head.uri.split(separator: "?").first.map(String.init) ?? "" {
            case "/healthz":
                respond(.ok, "ok\n")
            case "/readyz":
                if let reason = health.notReadyReason {
                    respond(.serviceUnavailable, "not ready: \(reason)\n")
                } else if health.upstreamAnsweredRecently {
                    respond(.ok, "ready\n")
                } else {
                    let health = self.health
                    upstream().probe(on: context.eventLoop).assumeIsolated().whenComplete { result in
                        switch result {
                        case .success:
                            health.upstreamAnswered()
                            self.respond(.ok, "ready\n")
                        case .failure:
                            self.respond(.serviceUnavailable, "not ready: the app does not accept connections\n")
                        }
                    }
                }
            default:
                respond(.notFound, "not found\n")
            }
        }
    }

    private func respond(_ status: HTTPResponseStatus, _ text: String) {
        guard let context, let head else { return }
        self.head = nil
        let response = FixedResponse(status, text: text, headers: [("Cache-Control", "no-store")])
        for part in response.parts(answering: head, allocator: context.channel.allocator) {
            context.write(wrapOutboundOut(part), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !head.isKeepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
