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

    @Option(name: .customLong("health.listen-address"), help: "HOST:PORT for plain-HTTP /healthz and /readyz; 'none' for none.")
    var healthListenAddress: String = ":9444"

    @Option(name: .customLong("web.shutdown-timeout"), help: "How long SIGTERM waits for in-flight scrapes (e.g. 15s).")
    var shutdownTimeout: String = "15s"

    @Option(name: .customLong("reload.interval"), help: "How often certificate and config files are checked for changes; 0 for SIGHUP only.")
    var reloadInterval: String = "5s"

    @Option(name: .customLong("log.level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(name: .customLong("log.format"), help: "logfmt or json.")
    var logFormat: String = "logfmt"

    func run() async throws {
        let logger = try Logging.make(level: logLevel, format: logFormat)
        let shutdownTimeout = try DurationFlag.parse(shutdownTimeout, flag: "--web.shutdown-timeout")
        let reloadInterval = try DurationFlag.parse(reloadInterval, flag: "--reload.interval")
        let (host, port) = try ListenAddress.parse(listenAddress, flag: "--web.listen-address")
        let health = try ["", "none"].contains(healthListenAddress) ? nil : ListenAddress.parse(healthListenAddress, flag: "--health.listen-address")
        let sources = try ConfigurationFlags.sources(webConfigFile: webConfigFile, configFile: configFile,
                                                     upstreamURL: upstreamURL)
        let snapshot = try ConfigurationLoader.load(sources)

        let server = try GatewayServer(
            settings: GatewayServerSettings(
                web: snapshot.web, gateway: snapshot.gateway, listenHost: host, listenPort: port,
                shutdownTimeout: shutdownTimeout),
            tlsContext: snapshot.tlsContext, logger: logger)
        let reloader = ConfigurationReloader(
            server: server, sources: sources, current: snapshot,
            pollInterval: reloadInterval > .zero ? reloadInterval : nil, logger: logger)
        // Shut down in reverse order: the reloader stops, the gateway drains, and the
        // health port, last, says "not ready: draining" for as long as the drain lasts.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: server), .init(service: reloader)]
        if let health {
            services.insert(.init(service: server.makeHealthServer(host: health.0, port: health.1)), at: 0)
        }
        var configuration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // A backstop: the drain enforces the timeout itself.
        configuration.maximumGracefulShutdownDuration = shutdownTimeout + .seconds(2)
        try await ServiceGroup(configuration: configuration).run()
    }
}
