import MetricsFilter
import NIOCore

/// The gateway's filter hook filled by `MetricsFilter`: each scrape gets its own
/// `StreamingFilter` for the format the app answered in, and its report goes to the
/// gateway's own metrics.
struct PolicyScrapeFilter: ScrapeBodyFilter {
    let policy: FilterPolicy
    let metrics: GatewayMetrics
    /// Admission memory, kept across scrapes (and across reloads that keep the limits).
    let tracker: SeriesTracker?
    /// The series decisions of earlier scrapes, kept across reloads that keep the
    /// budget (a memo forgets them when the policy changed).
    let memos: SeriesMemoStore

    init(policy: FilterPolicy, metrics: GatewayMetrics, previous: PolicyScrapeFilter? = nil) {
        self.policy = policy
        self.metrics = metrics
        self.memos = previous?.memos.budget == policy.memoBudget ? previous!.memos : SeriesMemoStore(budget: policy.memoBudget)
        let previous = previous?.tracker
        if policy.limits.needsTracker {
            self.tracker = previous?.limits == policy.limits ? previous : SeriesTracker(limits: policy.limits)
        } else {
            self.tracker = nil
        }
    }

    var readsProtobuf: Bool { policy.readsProtobuf }

    func makeTransform(format: ScrapeFormat, names: NameEscaping) -> any ScrapeBodyTransform {
        switch format {
        case .exposition(let format):
            let lease = memos.lease(policy: policy, format: format, names: names)
            return Transform(filter: StreamingFilter(policy: policy, format: format, names: names, tracker: tracker,
                                                     memo: lease?.memo, sharingMemo: lease?.sharing ?? false),
                             metrics: metrics, tracker: tracker, lease: lease)
        case .protobuf:
            let lease = memos.lease(policy: policy, format: nil, names: names)
            return Transform(filter: ProtobufFilter(policy: policy, names: names, tracker: tracker, memo: lease?.memo,
                                                    sharingMemo: lease?.sharing ?? false),
                             metrics: metrics, tracker: tracker, lease: lease)
        }
    }

    /// One scrape's filter, text or protobuf, behind the transform hook; its report
    /// goes to the gateway's metrics at the end.
    struct Transform<Filter: ScrapeFilterEngine>: ScrapeBodyTransform {
        let filter: Filter
        let metrics: GatewayMetrics
        let tracker: SeriesTracker?
        /// Holds the memo for this scrape; it goes back when the transform goes.
        let lease: SeriesMemoStore.Lease?
        private(set) var shouldFailScrape = false
        private(set) var readNothing = false
        var retainedBytes: Int { filter.retainedBytes }

        init(filter: Filter, metrics: GatewayMetrics, tracker: SeriesTracker?, lease: SeriesMemoStore.Lease? = nil) {
            self.filter = filter
            self.metrics = metrics
            self.tracker = tracker
            self.lease = lease
        }

        mutating func process(_ chunk: ByteBuffer) -> ByteBuffer? {
            var output: [UInt8] = []
            output.reserveCapacity(chunk.readableBytes + 64)
            chunk.withUnsafeReadableBytes { filter.process($0, into: &output) }
            shouldFailScrape = filter.failed
            return output.isEmpty ? nil : ByteBuffer(bytes: output)
        }

        mutating func finish() -> ByteBuffer? {
            var output: [UInt8] = []
            let report = filter.finish(into: &output)
            shouldFailScrape = report.failed
            readNothing = report.samplesIn == 0 && !report.linesRejected.isEmpty
            metrics.filtered(report, admitted: tracker?.admittedPerFamily)
            if let lease {
                metrics.memoUsed(filter.memoCursor.statistics, heldBytes: lease.memo.usedBytes)
            }
            return output.isEmpty ? nil : ByteBuffer(bytes: output)
        }
    }
}

/// What `PolicyScrapeFilter.Transform` (and `scrapeguard filter`) needs of a filter:
/// `StreamingFilter` (the text formats) and `ProtobufFilter` alike.
package protocol ScrapeFilterEngine: AnyObject {
    func process(_ chunk: UnsafeRawBufferPointer, into output: inout [UInt8])
    func finish(into output: inout [UInt8]) -> FilterReport
    var failed: Bool { get }
    var retainedBytes: Int { get }
    /// This scrape's place in its memo, with what its lines found there.
    var memoCursor: SeriesMemo.Cursor { get }
}

extension StreamingFilter: ScrapeFilterEngine {}
extension ProtobufFilter: ScrapeFilterEngine {}
