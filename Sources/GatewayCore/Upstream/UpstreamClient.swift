import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Why a fetch of the app's metrics failed.
package enum UpstreamError: Error, Sendable, Equatable {
    case connectFailed(String)
    case timeout
    case connectionClosed
    case protocolError(String)
}

/// Fetches the app's metrics over loopback with NIO's HTTP/1.1 client codec. Idle
/// keep-alive connections are pooled per event loop, so a scrape's fetch runs on the
/// loop of the scraper's connection, with no thread hop.
package final class UpstreamClient: UpstreamFetching {
    package let configuration: UpstreamConfiguration
    private let pools = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBoundBox<IdleConnections>]>([:])
    private let maximumIdlePerLoop: Int

    package init(configuration: UpstreamConfiguration, maximumIdlePerLoop: Int = 4) {
        self.configuration = configuration
        self.maximumIdlePerLoop = maximumIdlePerLoop
    }

    /// Starts a fetch; must be called on `eventLoop`. The receiver hears exactly one of
    /// `.end` or `.failed`, unless the fetch is cancelled first.
    func fetch(
        method: HTTPMethod, query: String?, headers: HTTPHeaders, timeout: TimeAmount,
        on eventLoop: EventLoop, receiver: UpstreamEventReceiver
    ) -> UpstreamFetchControl {
        eventLoop.preconditionInEventLoop()
        var target = configuration.url.pathAndQuery
        if let query {
            target += (target.contains("?") ? "&" : "?") + query
        }
        let fetch = UpstreamFetch(client: self, method: method, target: target, headers: headers, eventLoop: eventLoop,
                                  receiver: receiver)
        fetch.start(timeout: timeout)
        return fetch
    }

    fileprivate func idleConnections(on eventLoop: EventLoop) -> IdleConnections {
        let box = pools.withLockedValue { pools in
            if let box = pools[ObjectIdentifier(eventLoop)] { return box }
            let box = NIOLoopBoundBox.makeBoxSendingValue(IdleConnections(), as: IdleConnections.self, eventLoop: eventLoop)
            pools[ObjectIdentifier(eventLoop)] = box
            return box
        }
        return box.value
    }

    fileprivate func release(_ channel: Channel) {
        let idle = idleConnections(on: channel.eventLoop)
        if channel.isActive && idle.channels.count < maximumIdlePerLoop {
            idle.channels.append(channel)
        } else {
            channel.close(promise: nil)
        }
    }

    fileprivate func connect(on eventLoop: EventLoop) -> EventLoopFuture<Channel> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(configuration.connectTimeout.nanoseconds))
            // One read of at most 64 KiB per event-loop turn: when the scraper falls
            // behind and reading stops, no more than that is already on its way in.
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16384,
                                                                                   maximum: 65536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(UpstreamResponseHandler())
                }
            }
        if let path = configuration.url.unixSocketPath {
            return bootstrap.connect(unixDomainSocketPath: path)
        }
        return bootstrap
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: configuration.url.host, port: configuration.url.port)
    }

    /// Whether the app accepts a connection now: what `/readyz` asks when no scrape
    /// reached the app recently. Connecting is all it does, so a probe never makes
    /// the app render its metrics.
    func probe(on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        connect(on: eventLoop).flatMap { channel in
            channel.close()
        }
    }

    /// Closes the idle connections of every event loop (after a reload replaced this client).
    func closeIdleConnections() {
        let boxes = pools.withLockedValue { Array($0.values) }
        for box in boxes {
            box.eventLoop.execute {
                let idle = box.value
                for channel in idle.channels { channel.close(promise: nil) }
                idle.channels.removeAll()
            }
        }
    }
}

/// Idle keep-alive connections of one event loop.
final class IdleConnections {
    var channels: [Channel] = []

    func take() -> Channel? {
        while let channel = channels.popLast() {
            if channel.isActive { return channel }
        }
        return nil
    }
}

/// One fetch of the app's metrics, bound to one event loop.
final class UpstreamFetch: UpstreamFetchControl {
    private let client: UpstreamClient
    private let method: HTTPMethod
    /// Path and query on the app: its URL's, plus the scraper's allowed parameters.
    private let target: String
    private let headers: HTTPHeaders
    private let eventLoop: EventLoop
    private weak var receiver: UpstreamEventReceiver?
    private var channel: Channel?
    private var timer: Scheduled<Void>?
    private var finished = false
    private var receivedHead = false
    /// What the receiver last asked for, applied to a channel that arrives later.
    private var reading = true

    init(client: UpstreamClient, method: HTTPMethod, target: String, headers: HTTPHeaders, eventLoop: EventLoop,
         receiver: UpstreamEventReceiver) {
        self.client = client
        self.method = method
        self.target = target
        self.headers = headers
        self.eventLoop = eventLoop
        self.receiver = receiver
    }

    func start(timeout: TimeAmount) {
        timer = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.fail(.timeout)
        }
        if let pooled = client.idleConnections(on: eventLoop).take() {
            send(on: pooled, reused: true)
        } else {
            connectAndSend()
        }
    }

    /// Stops reading from the app while the scraper cannot keep up.
    func setReading(_ reading: Bool) {
        self.reading = reading
        guard let channel, !finished else { return }
        _ = channel.setOption(.autoRead, value: reading)
    }

    /// Abandons the fetch without telling the receiver; the connection is closed.
    func cancel() {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        channel?.close(promise: nil)
        channel = nil
    }

    private func connectAndSend() {
        client.connect(on: eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                if self.finished {
                    channel.close(promise: nil)
                } else {
                    self.send(on: channel, reused: false)
                }
            case .failure(let error):
                self.fail(.connectFailed(Self.describe(error)))
            }
        }
    }

    private func send(on channel: Channel, reused: Bool) {
        self.channel = channel
        guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamResponseHandler.self) else {
            channel.close(promise: nil)
            fail(.protocolError("upstream pipeline is broken"))
            return
        }
        handler.current = self
        handler.reused = reused
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: target, headers: headers)
        head.headers.replaceOrAdd(name: "Host", value: client.configuration.url.hostHeader)
        head.headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        _ = channel.setOption(.autoRead, value: reading)
    }

    // MARK: Events from UpstreamResponseHandler

    fileprivate func received(_ part: HTTPClientResponsePart, from handler: UpstreamResponseHandler) {
        guard !finished else { return }
        switch part {
        case .head(let head):
            receivedHead = true
            receiver?.upstream(.head(head))
        case .body(let buffer):
            receiver?.upstream(.body(buffer))
        case .end:
            finished = true
            timer?.cancel()
            handler.current = nil
            if let channel {
                self.channel = nil
                if handler.keepAlive {
                    client.release(channel)
                } else {
                    channel.close(promise: nil)
                }
            }
            receiver?.upstream(.end)
        }
    }

    fileprivate func connectionEnded(_ error: UpstreamError, reused: Bool) {
        guard !finished else { return }
        if reused && !receivedHead {
            // The app closed an idle keep-alive connection as we used it: once more
            // on a new connection.
            channel = nil
            connectAndSend()
            return
        }
        fail(error)
    }

    private func fail(_ error: UpstreamError) {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        channel?.close(promise: nil)
        channel = nil
        receiver?.upstream(.failed(error))
    }

    /// For the log only: the client is told "upstream unavailable".
    private static func describe(_ error: Error) -> String {
        if let error = error as? IOError { return "connection failed (errno \(error.errnoCode))" }
        if let error = error as? ChannelError, case .connectTimeout = error { return "connect timeout" }
        return "connection failed: \(error)"
    }
}

/// The last handler of an upstream connection: hands response parts to the fetch
/// that currently uses the connection.
private final class UpstreamResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    var current: UpstreamFetch?
    var reused = false
    var keepAlive = true

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if case .head(let head) = part {
            keepAlive = head.isKeepAlive
        }
        guard let current else {
            // A response nobody asked for: the connection can't be trusted.
            context.close(promise: nil)
            return
        }
        current.received(part, from: self)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let fetch = current
        current = nil
        fetch?.connectionEnded(.connectionClosed, reused: reused)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        let fetch = current
        current = nil
        context.close(promise: nil)
        fetch?.connectionEnded(.protocolError("invalid HTTP response"), reused: false)
    }
}
