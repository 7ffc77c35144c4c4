// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "scrapeguard",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "scrapeguard", targets: ["scrapeguard"]),
        // For Benchmarks/ (a package of its own, so its dependencies stay out of this one).
        .library(name: "MetricsFilter", targets: ["MetricsFilter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        // Tests only: the second YAML composer the configuration reader is held against.
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // The demo's child processes (bash, curl) and its files, without Foundation.
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    ],
    targets: [
        // System OpenSSL 3 (libssl-dev). Never BoringSSL: see docs/ARCHITECTURE.md.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // Functions for what OpenSSL exposes only as macros, bcrypt via libcrypt, and
        // the pseudonyms' HMAC (hmac.c).
        .target(
            name: "COpenSSLShims",
            dependencies: ["COpenSSL"],
            linkerSettings: [.linkedLibrary("crypt")]
        ),
        // Google's RE2 (libre2-dev) behind a C face, for relabel regexes: Go's syntax,
        // linear-time matching. See docs/ARCHITECTURE.md, "Relabel regexes".
        .target(
            name: "CRE2",
            linkerSettings: [.linkedLibrary("re2")]
        ),
        // zlib (zlib1g-dev) for gzip responses. NIO's own compression lives in
        // swift-nio-extras, whose package depends on swift-nio-ssl (BoringSSL).
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // libyaml (libyaml-dev), the C parser Yams wraps, for the configuration files:
        // Yams itself imports Foundation, and with it ICU (see docs/ARCHITECTURE.md).
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        // The streaming exposition filter: raw bytes, no NIO, no Foundation.
        .target(
            name: "MetricsFilter",
            dependencies: ["COpenSSLShims", "CRE2"]
        ),
        .target(
            name: "GatewayTLS",
            dependencies: [
                "COpenSSL",
                "COpenSSLShims",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Calls no OpenSSL function: TLS, hashes and bcrypt come through GatewayTLS.
        .target(
            name: "GatewayCore",
            dependencies: [
                "GatewayTLS",
                "MetricsFilter",
                "CZlib",
                "CYAML",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "scrapeguard",
            dependencies: [
                "GatewayCore",
                "GatewayTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // What both test targets share: the repository's paths, the filter harness.
        .target(
            name: "TestSupport",
            dependencies: ["MetricsFilter"],
            path: "Tests/TestSupport"
        ),
        // In memory, in parallel: the filter, the relabel engine, the state machines,
        // the HTTP handler on EmbeddedChannel. No socket, no process.
        .testTarget(
            name: "ScrapeguardUnitTests",
            dependencies: [
                "GatewayCore",
                "GatewayTLS",
                "MetricsFilter",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Real servers and clients (curl, openssl, Python, promtool, Go), one at a time.
        .testTarget(
            name: "ScrapeguardIntegrationTests",
            dependencies: [
                "GatewayCore",
                "GatewayTLS",
                "MetricsFilter",
                "scrapeguard",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
