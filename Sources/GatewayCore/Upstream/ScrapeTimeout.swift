import NIOHTTP1

/// How long a scrape may take upstream. Prometheus says how long it will wait in
/// `X-Prometheus-Scrape-Timeout-Seconds`; the fetch gets that less a margin (10%, at
/// most half a second) so the gateway's 504 reaches Prometheus before its own
/// deadline. Without the header, the configured `scrape_timeout` applies.
enum ScrapeTimeout {
    static func effective(headers: HTTPHeaders, configured: Duration) -> Duration {
        guard let text = headers.first(name: "X-Prometheus-Scrape-Timeout-Seconds"),
            let seconds = Double(text.trimmingSpaces), seconds.isFinite, seconds > 0
        else { return configured }
        let capped = min(seconds, 3600)
        let margin = min(0.5, capped * 0.1)
        return .milliseconds(Int64(max(0.1, capped - margin) * 1000))
    }
}
