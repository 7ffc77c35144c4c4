import MetricsFilter
import NIOCore

/// The gateway's filter hook filled by `MetricsFilter`: each scrape gets its own
/// `StreamingFilter` for the format the app answered in, and its report goes to the
/// gateway's own metrics.
struct PolicyScrapeFilter: ScrapeBodyFilter {
    let policy: FilterPolicy
    let metrics: GatewayMetrics

    func makeTransform(contentType: String?) -> any ScrapeBodyTransform {
        Transform(filter: StreamingFilter(policy: policy, format: ExpositionFormat(contentType: contentType)), metrics: metrics)
    }

    struct Transform: ScrapeBodyTransform {
        let filter: StreamingFilter
        let metrics: GatewayMetrics
        private(set) var shouldFailScrape = false

        init(filter: StreamingFilter, metrics: GatewayMetrics) {
            self.filter = filter
            self.metrics = metrics
        }

        mutating func process(_ chunk: ByteBuffer) -> ByteBuffer? {
            var output: [UInt8] = []
            output.reserveCapacity(chunk.readableBytes + 64)
            chunk.withUnsafeReadableBytes { filter.process($0, into: &output) }
            shouldFailScrape = filter.report.failed
            return output.isEmpty ? nil : ByteBuffer(bytes: output)
        }

        mutating func finish() -> ByteBuffer? {
            var output: [UInt8] = []
            let report = filter.finish(into: &output)
            shouldFailScrape = report.failed
            metrics.filtered(report)
            return output.isEmpty ? nil : ByteBuffer(bytes: output)
        }
    }
}
