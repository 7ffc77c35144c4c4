import NIOCore
import NIOHTTP1

/// A whole response known before it is written: a status, a body of a few bytes and
/// its headers. The one way the gateway (its short answers and its own metrics), the
/// health port and the demo app answer, so each gets the same framing: a
/// `Content-Length`, no body for `HEAD`, and `Connection: close` when the request
/// does not keep the connection alive.
package struct FixedResponse {
    package var status: HTTPResponseStatus
    package var contentType: String
    package var body: [UInt8]
    package var headers: [(String, String)]

    package init(_ status: HTTPResponseStatus, contentType: String = "text/plain; charset=utf-8",
                 body: [UInt8], headers: [(String, String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    package init(_ status: HTTPResponseStatus, text: String, headers: [(String, String)] = []) {
        self.init(status, body: Array(text.utf8), headers: headers)
    }

    /// The head and (unless the request is a `HEAD`) the body to write, in order; the
    /// caller writes `.end` itself, when its own bookkeeping allows.
    /// - Parameter extraHeaders: added unless the response has a header of that name.
    package func parts(answering request: HTTPRequestHead?, extraHeaders: [(String, String)] = [],
                       allocator: ByteBufferAllocator) -> [HTTPServerResponsePart] {
        var fields = HTTPHeaders()
        fields.add(name: "Content-Type", value: contentType)
        fields.add(name: "Content-Length", value: "\(body.count)")
        for (name, value) in headers { fields.add(name: name, value: value) }
        for (name, value) in extraHeaders where !fields.contains(name: name) {
            fields.add(name: name, value: value)
        }
        if !(request?.isKeepAlive ?? false) {
            fields.replaceOrAdd(name: "Connection", value: "close")
        }
        var parts: [HTTPServerResponsePart] = [
            .head(HTTPResponseHead(version: request?.version ?? .http1_1, status: status, headers: fields))
        ]
        if request?.method != .HEAD {
            parts.append(.body(.byteBuffer(allocator.buffer(bytes: body))))
        }
        return parts
    }
}
