/// Why the filter dropped a series or a line: the `reason` label of
/// `scrapeguard_filter_series_dropped_total` and `scrapeguard_filter_lines_rejected_total`
/// (its raw value), and the key of `FilterReport`'s counts. A line the parser cannot
/// read is counted under the parser's own words instead (`FilterReport.reject(unparsed:)`).
public enum DropReason: String, Sendable, Hashable, CaseIterable {
    // Relabeling and PII
    case relabel
    case pii
    case missingMetricName = "missing_metric_name"
    case invalidName = "invalid_name"
    case renamedInOpenmetrics = "renamed_in_openmetrics"
    /// Protobuf: the rules treat the parts of a histogram or summary (`_bucket`,
    /// `_sum`, `_count`) differently, which one message cannot carry.
    case partsRelabeledApart = "parts_relabeled_apart"
    /// Two label names of a sample became one when escaped for a legacy scraper.
    case escapedNameClash = "escaped_name_clash"
    // Limits
    case labelLimit = "label_limit"
    case labelValueLengthLimit = "label_value_length_limit"
    case sampleLimit = "sample_limit"
    case seriesLimit = "series_limit"
    case labelValueLimit = "label_value_limit"
    case unitRefused = "unit_refused"
    // The exposition as a whole
    case duplicate
    case notMetadata = "not_metadata"
    case repeatedMetadata = "repeated_metadata"
    case metadataAfterSamples = "metadata_after_samples"
    case unitMismatch = "unit_mismatch"
    case unitForType = "unit_for_type"
    case familyReopened = "family_reopened"
    case nameNotAllowedForType = "name_not_allowed_for_type"
    case clashingName = "clashing_name"
    case groupReappears = "group_reappears"
    case lineTooLong = "line_too_long"
    /// A protobuf `MetricFamily` longer than `maximumFamilyLength`.
    case familyTooLarge = "family_too_large"
    /// A protobuf `Metric` longer than `maximumLineLength` (a line's bound).
    case metricTooLarge = "metric_too_large"
    /// A protobuf body that ended inside a message.
    case truncatedMessage = "truncated_message"
    case textAfterEof = "text_after_eof"
    // Values the type does not allow
    case badValue = "bad_value"
    case counterNan = "counter_nan"
    case counterNegative = "counter_negative"
    case countNotInteger = "count_not_integer"
    case invalidLe = "invalid_le"
    case invalidQuantile = "invalid_quantile"
    case quantileValueNegative = "quantile_value_negative"
    case infoValueNotOne = "info_value_not_one"
    case statesetValue = "stateset_value"
    case statesetMissingLabel = "stateset_missing_label"
    // Histogram groups, dropped whole
    case invalidHistogram = "invalid_histogram"
    case histogramCountSum = "histogram_count_sum"
    case histogramNoInfBucket = "histogram_no_inf_bucket"
    case histogramBucketsOutOfOrder = "histogram_buckets_out_of_order"
    case histogramBucketValuesOutOfOrder = "histogram_bucket_values_out_of_order"
    case histogramCountMismatch = "histogram_count_mismatch"
    case histogramNegativeBucketWithSum = "histogram_negative_bucket_with_sum"
    case gaugehistogramNegativeGsum = "gaugehistogram_negative_gsum"
}
