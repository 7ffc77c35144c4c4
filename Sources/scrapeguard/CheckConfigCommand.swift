import ArgumentParser
import GatewayCore
import GatewayTLS
import MetricsFilter

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
            let snapshot = try ConfigurationLoader.load(
                ConfigurationFlags.sources(webConfigFile: webConfigFile, configFile: configFile, upstreamURL: nil))
            let (web, gateway) = (snapshot.web, snapshot.gateway)
            print("\(webConfigFile): OK: TLS \(web.tls.minimumVersion == .tls13 ? "1.3" : "1.2")+, client auth \(web.tls.clientAuth.rawValue), \(web.tls.clientAllowedSANs.count) allowed SAN(s), \(web.tls.clientAllowedSANPatterns.count) SAN pattern(s), \(web.basicAuthUsers.count) user(s)")
            print("\(configFile): OK: upstream \(gateway.upstream.url), metrics path \(gateway.metricsPath), \(Self.describe(gateway.filter))")
        } catch {
            printError("check-config: \(error)")
            throw ExitCode.failure
        }
    }

    /// What the filter sections amount to, so that a policy that took effect shows.
    static func describe(_ policy: FilterPolicy) -> String {
        let semantics = policy.relabelRules.first.map { " (\($0.semantics.rawValue))" } ?? ""
        var parts = ["\(policy.relabelRules.count) relabel rule(s)\(semantics)"]
        let pii = policy.pii
        if pii.isEmpty {
            parts.append("no PII rules")
        } else {
            let detectors = pii.detectorRules.map { "\($0.detector.rawValue): \($0.action.rawValue)" }
            parts.append("PII: \(pii.labelRules.count) label rule(s), detectors [\(detectors.joined(separator: ", "))]")
        }
        let limits = policy.limits
        let set: [(String, Int?)] = [
            ("label_limit", limits.labelLimit), ("label_value_length_limit", limits.labelValueLengthLimit),
            ("sample_limit", limits.sampleLimit), ("series_per_metric", limits.seriesPerMetric),
            ("values_per_label", limits.valuesPerLabel),
        ]
        let named = set.compactMap { name, value in value.map { "\(name) \($0)" } }
        parts.append(named.isEmpty ? "no limits" : "limits: \(named.joined(separator: ", "))")
        return parts.joined(separator: "; ")
    }
}
