/// Limits that degrade a scrape series by series instead of failing it, as
/// Prometheus's own limits do.
public struct SeriesLimits: Sendable, Hashable {
    /// Labels per series (the name not counted); more: the series is dropped.
    public var labelLimit: Int?
    /// Bytes in one label value; longer: the series is dropped.
    public var labelValueLengthLimit: Int?
    /// Samples per scrape: new series stop being admitted where they would pass it.
    public var sampleLimit: Int?
    /// Series per metric family.
    public var seriesPerMetric: Int?
    /// Distinct values per label name, over all metrics.
    public var valuesPerLabel: Int?
    /// An admitted series not seen for this long is forgotten (and must be admitted anew).
    public var idleTimeout: Duration

    public init(labelLimit: Int? = nil, labelValueLengthLimit: Int? = nil, sampleLimit: Int? = nil,
                seriesPerMetric: Int? = nil, valuesPerLabel: Int? = nil, idleTimeout: Duration = .seconds(600)) {
        self.labelLimit = labelLimit
        self.labelValueLengthLimit = labelValueLengthLimit
        self.sampleLimit = sampleLimit
        self.seriesPerMetric = seriesPerMetric
        self.valuesPerLabel = valuesPerLabel
        self.idleTimeout = idleTimeout
    }

    /// Whether any limit needs the admission tracker.
    public var needsTracker: Bool { sampleLimit != nil || seriesPerMetric != nil || valuesPerLabel != nil }
}
