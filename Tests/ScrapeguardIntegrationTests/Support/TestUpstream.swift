import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A real HTTP server on loopback standing in for the app, with a path per behaviour:
/// - `/metrics`: `body` with a Content-Length and `contentType`
/// - `/chunked`: `body` in 1000-byte chunks, no Content-Length
/// - `/slow`: waits `slowDelay` before answering
/// - `/huge`: `hugeSize` bytes, chunked; `/huge-length`: the same with a Content-Length
/// - `/error`: status 500
final class TestUpstream: Sendable {
    let body: [UInt8]
    let contentType: String
    /// Sent as `Content-Encoding` when set (the body is sent as it is).
    let contentEncoding: String?
    let slowDelay: TimeAmount
    let hugeSize: Int
    private let channel = NIOLockedValueBox<Channel?>(nil)
    private let requests = NIOLockedValueBox<[HTTPRequestHead]>([])

    init(body: [UInt8], contentType: String = "text/plain; version=0.0.4; charset=utf-8", contentEncoding: String? = nil,
         slowDelay: TimeAmount = .seconds(5), hugeSize: Int = 4 << 20) {
        self.body = body
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.slowDelay = slowDelay
        self.hugeSize = hugeSize
    }

    var receivedRequests: [HTTPRequestHead] { requests.withLockedValue { $0 } }

    /// Listens on a Unix domain socket instead of TCP.
    func start(unixSocketPath: String) async throws {
        let channel = try await bootstrap().bind(unixDomainSocketPath: unixSocketPath, cleanupExistingSocketFile: true).get()
        self.channel.withLockedValue { $0 = channel }
    }

    func start() async throws -> Int {
        let channel = try await bootstrap().bind(host: "127.0.0.1", port: 0).get()
        self.channel.withLockedValue { $0 = channel }
        return channel.localAddress!.port!
    }

    private func bootstrap() -> ServerBootstrap {
        ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(upstream: self))
                }
            }
    }

    func stop() async {
        let channel = self.channel.withLockedValue { $0 }
        try? await channel?.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let upstream: TestUpstream
        var head: HTTPRequestHead?

        init(upstream: TestUpstream) { self.upstream = upstream }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                upstream.requests.withLockedValue { $0.append(head) }
            case .body:
                break
            case .end:
                guard let head else { return }
                respond(to: head, context: context)
            }
        }

        private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
            let path = String(head.uri.split(separator: "?").first ?? "")
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: upstream.contentType)
            if let encoding = upstream.contentEncoding { headers.add(name: "Content-Encoding", value: encoding) }
            switch path {
            case "/metrics":
                headers.add(name: "Content-Length", value: "\(upstream.body.count)")
                send(head, headers, chunks: [upstream.body], context: context)
            case "/chunked":
                let chunks = stride(from: 0, to: upstream.body.count, by: 1000).map {
                    Array(upstream.body[$0..<min($0 + 1000, upstream.body.count)])
                }
                send(head, headers, chunks: chunks, context: context)
            case "/slow":
                headers.add(name: "Content-Length", value: "\(upstream.body.count)")
                let slowHeaders = headers
                context.eventLoop.assumeIsolated().scheduleTask(in: upstream.slowDelay) {
                    self.send(head, slowHeaders, chunks: [self.upstream.body], context: context)
                }
            case "/huge", "/huge-length":
                if path == "/huge-length" { headers.add(name: "Content-Length", value: "\(upstream.hugeSize)") }
                let line = Array("huge_metric{i=\"0000000000\"} 1\n".utf8)
                let chunk = Array((0..<(65536 / line.count)).flatMap { _ in line })
                let count = (upstream.hugeSize + chunk.count - 1) / chunk.count
                send(head, headers, chunks: Array(repeating: chunk, count: count), context: context)
            case "/error":
                headers.add(name: "Content-Length", value: "6")
                send(head, headers, chunks: [Array("oops!\n".utf8)], status: .internalServerError, context: context)
            default:
                headers.add(name: "Content-Length", value: "0")
                send(head, headers, chunks: [], status: .notFound, context: context)
            }
        }

        private func send(_ head: HTTPRequestHead, _ headers: HTTPHeaders, chunks: [[UInt8]],
                          status: HTTPResponseStatus = .ok, context: ChannelHandlerContext) {
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            if head.method != .HEAD {
                for chunk in chunks {
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: chunk)))), promise: nil)
                }
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
