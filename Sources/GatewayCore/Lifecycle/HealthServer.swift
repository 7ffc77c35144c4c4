import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The plain-HTTP port the kubelet probes: `/healthz` (the process serves) and
/// `/readyz` (certificates loaded, the app answered a scrape in the last seconds or
/// accepts a connection now, not draining). No auth, no metrics, nothing secret:
/// only a status word.
final class HealthServer: Sendable {
    private let health: GatewayHealth
    private let upstream: @Sendable () -> UpstreamClient
    private let channel = NIOLockedValueBox<Channel?>(nil)

    init(health: GatewayHealth, upstream: @escaping @Sendable () -> UpstreamClient) {
        self.health = health
        self.upstream = upstream
    }

    func start(host: String, port: Int) async throws -> SocketAddress {
        let health = self.health
        let upstream = self.upstream
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(HealthHandler(health: health, upstream: upstream))
                }
            }
            .bind(host: host, port: port).get()
        self.channel.withLockedValue { $0 = channel }
        return channel.localAddress!
    }

    func stop() async {
        let channel = self.channel.withLockedValue { channel in
            defer { channel = nil }
            return channel
        }
        try? await channel?.close()
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
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(text.utf8.count)")
        headers.add(name: "Cache-Control", value: "no-store")
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !head.isKeepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
