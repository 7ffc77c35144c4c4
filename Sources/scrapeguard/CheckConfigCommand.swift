import ArgumentParser
import GatewayCore
import GatewayTLS

struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the web config and the gateway config, certificates included."
    )

    @Option(name: .customLong("web.config.file"))
    var webConfigFile: String

    @Option(name: .customLong("config.file"))
    var configFile: String

    func run() throws {
        do {
            let (web, gateway) = try ConfigurationFiles.load(webConfigFile: webConfigFile, configFile: configFile, upstreamURL: nil)
            print("\(webConfigFile): OK: TLS \(web.tls.minimumVersion == .tls13 ? "1.3" : "1.2")+, client auth \(web.tls.clientAuth.rawValue), \(web.tls.clientAllowedSANs.count) allowed SAN(s), \(web.basicAuthUsers.count) user(s)")
            print("\(configFile): OK: upstream \(gateway.upstream.url), metrics path \(gateway.metricsPath), \(gateway.filter.relabelRules.count) relabel rule(s)")
        } catch {
            printError("check-config: \(error)")
            throw ExitCode.failure
        }
    }
}
