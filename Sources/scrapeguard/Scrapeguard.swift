import ArgumentParser

@main
struct Scrapeguard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scrapeguard",
        abstract: "A secured sidecar gateway for Prometheus metrics: mutual TLS, basic auth, filtering.",
        subcommands: [ServeCommand.self, CheckConfigCommand.self, FilterCommand.self, HashPasswordCommand.self, DemoCommand.self]
    )
}
