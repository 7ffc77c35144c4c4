// swift-tools-version:6.1
import PackageDescription

// Throughput and allocations of the streaming filter, with ordo-one/benchmark:
//   cd Benchmarks && swift package --allow-writing-to-package-directory benchmark
// A package of its own so that the benchmark tooling never enters the gateway's
// dependency graph.
let package = Package(
    name: "scrapeguard-benchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "scrapeguard", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "FilterBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "MetricsFilter", package: "scrapeguard"),
            ],
            path: "Benchmarks/FilterBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
