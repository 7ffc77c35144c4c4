import NIOCore
import NIOHTTP1

/// What one fetch of the app's metrics reports, in order: `head`, any number of
/// `body` parts, then `end`; or `failed`, at any point. Nothing after `end` or
/// `failed`, and nothing at all once the fetch is cancelled.
enum UpstreamEvent {
    case head(HTTPResponseHead)
    case body(ByteBuffer)
    case end
    case failed(UpstreamError)
}

/// Hears a fetch's events, on the event loop the fetch was started on.
protocol UpstreamEventReceiver: AnyObject {
    func upstream(_ event: UpstreamEvent)
}

/// A fetch in flight, as its starter controls it.
protocol UpstreamFetchControl: AnyObject {
    /// Stops (or resumes) reading from the app while the scraper cannot keep up.
    func setReading(_ reading: Bool)
    /// Abandons the fetch; the receiver hears nothing more.
    func cancel()
}

/// Starts fetches of the app's metrics: `UpstreamClient` over loopback, or in a test
/// a scripted stand-in.
protocol UpstreamFetching: Sendable {
    var configuration: UpstreamConfiguration { get }

    /// Starts a fetch; must be called on `eventLoop`, whose thread the events arrive on.
    /// The receiver is held weakly.
    /// `query` (the scraper's allowed parameters) is added to the app's own URL.
    func fetch(method: HTTPMethod, query: String?, headers: HTTPHeaders, timeout: TimeAmount, on eventLoop: EventLoop,
               receiver: UpstreamEventReceiver) -> UpstreamFetchControl
}
