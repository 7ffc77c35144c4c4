import GatewayTLS
import MetricsFilter
import Prometheus

/// The gateway's own metrics, served at `/gateway/metrics` behind the same auth as
/// the app's. Names follow Prometheus conventions: `scrapeguard_` prefix, `_total`
/// for counters, base units (seconds, bytes).
package final class GatewayMetrics: Sendable {
    /// How a scrape of the metrics path ended: the `result` label.
    package enum ScrapeResult: String, Sendable, CaseIterable {
        case success
        /// The app refused the connection, closed it, or answered an error status.
        case upstreamError = "upstream_error"
        case timeout
        /// The body went over `body_size_limit`.
        case tooLarge = "too_large"
        /// The scraper went away before the body was complete.
        case clientAborted = "client_aborted"
        /// The filter policy failed the scrape (`invalid_lines: fail_scrape`).
        case filterRejected = "filter_rejected"
        /// Refused with 503: `max_buffered_bytes` was spent by slow scrapers.
        case overloaded
        /// The app answered in a format the filter cannot read, or with an encoding the
        /// gateway did not ask for: 502, nothing of it forwarded.
        case upstreamBadFormat = "upstream_bad_format"
    }

    package let registry: PrometheusCollectorRegistry
    private let scrapes: [ScrapeResult: Counter]
    private let upstreamDuration: DurationHistogram
    private let upstreamBytes: Counter
    private let responseBytes: Counter
    private let handshakes: Counter
    private let openConnections: Gauge
    private let serverCertificateExpiry: Gauge
    private let clientCACertificateExpiry: Gauge
    private let filterRewritten: Counter

    package init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        scrapes = Dictionary(uniqueKeysWithValues: ScrapeResult.allCases.map {
            ($0, registry.makeCounter(descriptor: name("scrapes", "total", "Scrapes of the metrics path, by how they ended."),
                                      labels: [("result", $0.rawValue)]))
        })
        upstreamDuration = registry.makeDurationHistogram(
            descriptor: name("upstream_request_duration", "seconds", "Time from sending the request to the app to the end of its body."),
            buckets: [.milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                      .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10)])
        upstreamBytes = registry.makeCounter(
            descriptor: name("upstream_received_bytes", "total", "Body bytes received from the app."))
        responseBytes = registry.makeCounter(
            descriptor: name("response_sent_bytes", "total", "Body bytes sent to scrapers, after filtering."))
        handshakes = registry.makeCounter(
            descriptor: name("tls_handshakes", "total", "Completed TLS handshakes."))
        openConnections = registry.makeGauge(
            descriptor: name("open_connections", "", "Client connections open now."))
        serverCertificateExpiry = registry.makeGauge(
            descriptor: Self.expiry, labels: [("certificate", "server")])
        clientCACertificateExpiry = registry.makeGauge(
            descriptor: Self.expiry, labels: [("certificate", "client_ca")])
        filterRewritten = registry.makeCounter(
            descriptor: name("filter_samples_rewritten", "total", "Samples whose labels the filter changed."))
        for outcome in ["success", "failure"] {
            _ = reloadCounter(outcome)
        }
    }

    func scrapeEnded(_ result: ScrapeResult) {
        scrapes[result]?.increment()
    }

    func upstreamFetched(duration: Duration, bytes: Int) {
        upstreamDuration.record(duration)
        upstreamBytes.increment(by: Int64(bytes))
    }

    func bodySent(bytes: Int) {
        responseBytes.increment(by: Int64(bytes))
    }

    func handshakeCompleted() {
        handshakes.increment()
    }

    func handshakeFailed(reason: String) {
        registry.makeCounter(descriptor: name("tls_handshake_failures", "total", "TLS connections that failed, by reason."),
                             labels: [("reason", reason)]).increment()
    }

    func authenticationFailed(reason: String) {
        registry.makeCounter(descriptor: name("auth_failures", "total", "Requests refused by basic auth, by reason."),
                             labels: [("reason", reason)]).increment()
    }

    func requestRefused(reason: String) {
        registry.makeCounter(descriptor: name("requests_refused", "total",
                                              "Requests refused before they were served (not auth failures), by reason."),
                             labels: [("reason", reason)]).increment()
    }

    func connectionRejected(_ limit: ConnectionLimit) {
        registry.makeCounter(descriptor: name("connections_rejected", "total", "Connections closed by a limit, by reason."),
                             labels: [("reason", limit.rawValue)]).increment()
    }

    func connectionOpened() { openConnections.increment() }
    func connectionClosed() { openConnections.decrement() }

    func reloaded(success: Bool) {
        reloadCounter(success ? "success" : "failure").increment()
    }

    private func reloadCounter(_ result: String) -> Counter {
        registry.makeCounter(descriptor: name("reloads", "total", "Reloads of certificates and configuration, by result."),
                             labels: [("result", result)])
    }

    /// Records what the filter did to one scrape.
    func filtered(_ report: FilterReport, admitted: [String: Int]?) {
        for (key, count) in report.piiActions {
            registry.makeCounter(descriptor: name("filter_pii_actions", "total", "Label values a PII rule redacted, hashed or dropped, by rule and action."),
                                 labels: [("rule", key.rule), ("action", key.action)]).increment(by: Int64(count))
        }
        for (metric, count) in admitted ?? [:] {
            registry.makeGauge(descriptor: name("filter_series_admitted", "", "Series admitted by the cardinality limits now, by metric."),
                               labels: [("metric", metric)]).set(Double(count))
        }
        for (key, count) in report.seriesDroppedByMetric {
            registry.makeCounter(descriptor: name("filter_series_dropped", "total", "Series the filter dropped, by reason and metric."),
                                 labels: [("reason", key.reason), ("metric", key.metric)]).increment(by: Int64(count))
        }
        for (reason, count) in report.linesRejected {
            registry.makeCounter(descriptor: name("filter_lines_rejected", "total", "Exposition lines the filter could not read, by reason."),
                                 labels: [("reason", reason)]).increment(by: Int64(count))
        }
        filterRewritten.increment(by: Int64(report.samplesRewritten))
    }

    /// What one scrape's lines found in the series memo, and what the memo holds.
    func memoUsed(_ lines: SeriesMemo.Statistics, heldBytes: Int) {
        for (result, count) in [("hit", lines.hits), ("remembered", lines.misses), ("not_remembered", lines.refused),
                                ("missed_shared", lines.missedWhileShared)] {
            registry.makeCounter(descriptor: name("filter_memo_lines", "total",
                                                  "Sample lines by what the series memo did: hit (the decision replayed), remembered, not_remembered (its budget spent), missed_shared (missed by a scrape sharing the memo with others at once: left for the next that has it alone)."),
                                 labels: [("result", result)]).increment(by: Int64(count))
        }
        registry.makeGauge(descriptor: name("filter_memo", "bytes", "Bytes the series memo holds (filter.memo_budget bounds them)."))
            .set(Double(heldBytes))
    }

    /// Records the expiry of the certificates a context uses.
    func certificatesInUse(_ context: TLSContext) {
        serverCertificateExpiry.set(Double(context.certificateNotAfter))
        if let clientCA = context.clientCANotAfter {
            clientCACertificateExpiry.set(Double(clientCA))
        }
    }

    private static var expiry: MetricNameDescriptor { name("certificate_expiry_timestamp", "seconds", "notAfter of the certificates in use, as a Unix timestamp.") }

    /// The exposition, text format 0.0.4.
    package func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}

private func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
    MetricNameDescriptor(namespace: "scrapeguard", metricName: metric, unitName: unit, helpText: help)
}
