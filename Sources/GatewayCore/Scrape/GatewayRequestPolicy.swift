import Logging

/// What every connection's HTTP handler shares: built once per configuration.
struct GatewayRequestPolicy: Sendable {
    var authenticator: BasicAuthenticator
    var rateLimiter: RateLimiter?
    /// The app's client (its pool, for the health probe and reloads).
    var upstream: UpstreamClient
    /// What scrapes fetch through: `upstream`, or in a test a scripted stand-in.
    var fetcher: any UpstreamFetching
    var filter: any ScrapeBodyFilter
    var metricsPath: String
    var maximumRequestLine: Int
    /// From web-config's `http_server_config.headers`, added to every response.
    var responseHeaders: [(String, String)]
    /// Shared by every connection of the server, across reloads.
    var outbound: OutboundBudget
    var metrics: GatewayMetrics
    var health: GatewayHealth
    var logger: Logger

    var scrapeConfiguration: ScrapeStateMachine.Configuration {
        .init(maximumRequestLine: maximumRequestLine, metricsPath: metricsPath,
              authenticationEnabled: authenticator.isEnabled, bodySizeLimit: fetcher.configuration.bodySizeLimit,
              allowedQueryParameters: Set(fetcher.configuration.allowedQueryParameters),
              readsProtobuf: filter.readsProtobuf)
    }
}
