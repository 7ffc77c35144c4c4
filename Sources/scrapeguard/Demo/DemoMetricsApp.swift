import GatewayCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// A small app that serves Prometheus metrics over plain HTTP on loopback: the seed
/// article's exporter (`app_processed_tasks_total`, `app_active_workers`) plus a
/// request counter whose labels carry an e-mail address and a client IP, which is
/// exactly what the gateway exists to keep inside the pod. `scrapeguard demo` runs it;
/// it is not part of the gateway.
final class DemoMetricsApp: Sendable {
    private let listener = HTTPListener()
    private let scrapes = NIOLockedValueBox(0)

    /// The exposition for the n-th scrape.
    static func exposition(scrape: Int) -> String {
        let tasks = 100 + scrape * 7
        return """
            # HELP app_processed_tasks_total Total number of tasks processed by the application.
            # TYPE app_processed_tasks_total counter
            app_processed_tasks_total \(tasks)
            # HELP app_active_workers Current number of active workers in the application.
            # TYPE app_active_workers gauge
            app_active_workers \(1 + scrape % 10)
            # HELP app_http_requests_total HTTP requests served, by user and client address.
            # TYPE app_http_requests_total counter
            app_http_requests_total{method="get",path="/api/v1/users",user_email="alice@example.com",client_ip="203.0.113.7"} \(40 + scrape)
            app_http_requests_total{method="post",path="/api/v1/orders",user_email="bob@example.org",client_ip="198.51.100.23"} \(12 + scrape)

            """
    }

    /// Starts serving `/metrics` on `host:port` (port 0 picks one); returns the port.
    func start(host: String = "127.0.0.1", port: Int = 0) async throws -> Int {
        let scrapes = self.scrapes
        let address = try await listener.bind(host: host, port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                try channel.pipeline.syncOperations.addHandler(DemoHandler(scrapes: scrapes))
            }
        }
        return address.port!
    }

    func stop() async {
        await listener.close()
    }
}

private final class DemoHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let scrapes: NIOLockedValueBox<Int>
    private var head: HTTPRequestHead?

    init(scrapes: NIOLockedValueBox<Int>) {
        self.scrapes = scrapes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            let response: FixedResponse
            if head.uri.hasPrefix("/metrics") {
                let scrape = scrapes.withLockedValue { value in
                    value += 1
                    return value
                }
                response = FixedResponse(.ok, contentType: "text/plain; version=0.0.4; charset=utf-8",
                                         body: Array(DemoMetricsApp.exposition(scrape: scrape).utf8))
            } else {
                response = FixedResponse(.notFound, text: "not found\n")
            }
            for part in response.parts(answering: head, allocator: context.channel.allocator) {
                context.write(wrapOutboundOut(part), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            self.head = nil
        }
    }
}
