import MetricsFilter
import NIOCore

/// The hook through which every scraped body passes on its way to the scraper, chunk
/// by chunk. One transform is made per scrape; it may hold state across chunks (a
/// line split between two chunks) and emit what is left at the end.
package protocol ScrapeBodyFilter: Sendable {
    /// A transform for one body in `format` (what the app answered, checked), whose
    /// names reach the scraper as `names` says.
    func makeTransform(format: ScrapeFormat, names: NameEscaping) -> any ScrapeBodyTransform
    /// Whether the policy can filter protobuf bodies (`FilterPolicy.readsProtobuf`);
    /// when not, the app is never asked for protobuf.
    var readsProtobuf: Bool { get }
}

package protocol ScrapeBodyTransform {
    /// Takes the next chunk and returns what may be sent on now (possibly nothing).
    mutating func process(_ chunk: ByteBuffer) -> ByteBuffer?
    /// The body ended: returns whatever is still held back.
    mutating func finish() -> ByteBuffer?
    /// The policy says this scrape must fail (an unreadable line under `fail_scrape`).
    var shouldFailScrape: Bool { get }
    /// Bytes of state the transform holds until the body ends (the filter's tables),
    /// counted in the buffer budget with the bytes waiting for the scraper.
    var retainedBytes: Int { get }
    /// After `finish()`: the body had lines and the filter could read not one of them
    /// (a Content-Type that lies about its body).
    var readNothing: Bool { get }
}
