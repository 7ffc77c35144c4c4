/// Dropped series of one reason and metric in a row, counted into a report when another
/// comes (or the report is read): a steady scrape's drops come in runs, and counting
/// each alone makes a string and hashes it twice. Both filters count a remembered
/// series' drops through one (the protobuf filter every drop); a drop counted straight
/// into the report adds up the same.
struct DropRun {
    private var reason: DropReason?
    private var metric: [UInt8] = []
    private var count = 0

    /// One more drop; the run before it goes to `report` when this one differs.
    mutating func add(_ reason: DropReason, metric: UnsafeBufferPointer<UInt8>, to report: inout FilterReport) {
        if self.reason == reason, self.metric.withUnsafeBufferPointer({ ExpositionTokens.equal($0, metric) }) {
            count += 1
            return
        }
        flush(into: &report)
        self.reason = reason
        self.metric = Array(metric)
        count = 1
    }

    /// The run so far, counted into `report` (which a filter's `report` returns).
    func flush(into report: inout FilterReport) {
        if let reason { report.drop(reason, metric: metric, count: count) }
    }
}
