import ArgumentParser
import GatewayCore
import Logging
import ServiceLifecycle

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the app's metrics over HTTPS with mutual TLS and basic auth."
    )

    @Option(name: .customLong("web.config.file"), help: "exporter-toolkit web-config.yml: TLS, client certificates, users.")
    var webConfigFile: String

    @Option(name: .customLong("config.file"), help: "scrapeguard.yml: the upstream and its limits.")
    var configFile: String

    @Option(name: .customLong("web.listen-address"), help: "HOST:PORT to serve HTTPS on.")
    var listenAddress: String = ":9443"

    @Option(name: .customLong("upstream.url"), help: "The app's metrics URL; overrides upstream.url in the config file.")
    var upstreamURL: String?

    @Option(name: .customLong("log.level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func run() async throws {
        let logger = Logging.make(level: logLevel)
        let (web, gateway) = try ConfigurationFiles.load(webConfigFile: webConfigFile, configFile: configFile, upstreamURL: upstreamURL)
        let (host, port) = try ListenAddress.parse(listenAddress, flag: "--web.listen-address")
        let server = try GatewayServer(
            settings: GatewayServerSettings(web: web, gateway: gateway, listenHost: host, listenPort: port), logger: logger)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
