@testable import GatewayCore
import NIOCore
import NIOHTTP1
import Testing

/// The framing every fixed answer gets (the gateway's short answers and own metrics,
/// the health port, the demo app).
@Suite struct FixedResponseTests {
    static func request(_ method: HTTPMethod = .GET, version: HTTPVersion = .http1_1, headers: [(String, String)] = [])
        -> HTTPRequestHead
    {
        HTTPRequestHead(version: version, method: method, uri: "/metrics", headers: HTTPHeaders(headers))
    }

    static func split(_ parts: [HTTPServerResponsePart]) -> (head: HTTPResponseHead?, body: String?) {
        var head: HTTPResponseHead?
        var body: String?
        for part in parts {
            switch part {
            case .head(let value): head = value
            case .body(.byteBuffer(let buffer)): body = String(buffer: buffer)
            default: Issue.record("unexpected part \(part)")
            }
        }
        return (head, body)
    }

    @Test func aGETGetsHeadAndBodyWithItsLength() throws {
        let response = FixedResponse(.notFound, text: "not found\n", headers: [("X-Content-Type-Options", "nosniff")])
        let (head, body) = Self.split(response.parts(answering: Self.request(), allocator: ByteBufferAllocator()))
        let sent = try #require(head)
        #expect(sent.status == .notFound)
        #expect(sent.version == .http1_1)
        #expect(sent.headers["Content-Length"] == ["10"])
        #expect(sent.headers["Content-Type"] == ["text/plain; charset=utf-8"])
        #expect(sent.headers["X-Content-Type-Options"] == ["nosniff"])
        #expect(sent.headers["Connection"].isEmpty, "HTTP/1.1 keeps the connection")
        #expect(body == "not found\n")
    }

    @Test func aHEADGetsTheLengthButNoBody() {
        let response = FixedResponse(.ok, text: "ready\n")
        let (head, body) = Self.split(response.parts(answering: Self.request(.HEAD), allocator: ByteBufferAllocator()))
        #expect(head?.headers["Content-Length"] == ["6"])
        #expect(body == nil)
    }

    /// HTTP/1.0 without keep-alive, and `Connection: close`, get `Connection: close`
    /// and the request's version back.
    @Test(arguments: [
        request(version: .http1_0),
        request(headers: [("Connection", "close")]),
    ])
    func aRequestThatEndsTheConnectionIsToldSo(_ request: HTTPRequestHead) {
        let response = FixedResponse(.ok, text: "ok\n")
        let (head, _) = Self.split(response.parts(answering: request, allocator: ByteBufferAllocator()))
        #expect(head?.headers["Connection"] == ["close"])
        #expect(head?.version == request.version)
    }

    /// The operator's response headers are added, but never replace the response's own.
    @Test func extraHeadersDoNotOverrideTheResponsesOwn() {
        let response = FixedResponse(.ok, text: "ok\n", headers: [("Cache-Control", "no-store")])
        let (head, _) = Self.split(response.parts(
            answering: Self.request(),
            extraHeaders: [("Cache-Control", "max-age=60"), ("Strict-Transport-Security", "max-age=31536000")],
            allocator: ByteBufferAllocator()))
        #expect(head?.headers["Cache-Control"] == ["no-store"])
        #expect(head?.headers["Strict-Transport-Security"] == ["max-age=31536000"])
    }
}
