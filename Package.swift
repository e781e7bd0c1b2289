// swift-tools-version:6.0
import PackageDescription

// Layers, bottom up: C shims → Redis client / sessions core → Redis store / FastCGI server
// → application → executable. Three small Swift packages, chosen for what operators need:
// swift-log (the libraries take a Logger), swift-metrics and swift-prometheus (metrics a real
// Prometheus scrapes). They add about a minute to a clean CI build.
let package = Package(
    name: "session-store",
    products: [
        .executable(name: "session-fcgi", targets: ["session-fcgi"]),
        .library(name: "SessionCore", targets: ["SessionCore"]),
        .library(name: "SessionRedis", targets: ["SessionRedis"]),
        .library(name: "SessionCrypto", targets: ["SessionCrypto"]),
        .library(name: "RedisClient", targets: ["RedisClient"]),
        .library(name: "FastCGIServer", targets: ["FastCGIServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CFastCGI", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CCrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "COpenSSL", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CLinux"),
        .target(name: "SessionCrypto", dependencies: ["CCrypto", "SessionCore"]),
        .target(name: "RedisClient", dependencies: ["CHiredis", "COpenSSL", .product(name: "CoreMetrics", package: "swift-metrics")]),
        .target(name: "SessionCore"),
        .target(name: "SessionRedis", dependencies: ["SessionCore", "RedisClient"]),
        .target(name: "FastCGIServer", dependencies: ["CFastCGI", "CLinux", .product(name: "Logging", package: "swift-log")]),
        .target(name: "SessionApp", dependencies: [
            "SessionCore", "SessionRedis", "FastCGIServer", "RedisClient", "SessionCrypto", "CLinux",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .executableTarget(name: "session-fcgi", dependencies: ["SessionApp"]),

        .target(name: "TestSupport", dependencies: ["RedisClient"], path: "Tests/TestSupport"),
        .testTarget(name: "SessionCoreTests", dependencies: ["SessionCore", "SessionCrypto"]),
        .testTarget(name: "SessionCryptoTests", dependencies: ["SessionCrypto", "SessionCore"]),
        .testTarget(name: "RedisClientTests", dependencies: ["RedisClient", "TestSupport"]),
        .testTarget(name: "SessionRedisTests", dependencies: ["SessionRedis", "SessionCore", "SessionCrypto", "TestSupport"]),
        .testTarget(name: "FastCGIServerTests", dependencies: ["FastCGIServer", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "SessionAppTests", dependencies: ["SessionApp", "SessionCore", "SessionCrypto", "FastCGIServer", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "EndToEndTests", dependencies: ["TestSupport", "RedisClient", "session-fcgi"]),
        // README's Swift example, compiled (Tests/deploy/test_readme.py keeps the two alike).
        .testTarget(name: "ReadmeExampleTests", dependencies: ["RedisClient", "SessionCore", "SessionCrypto", "SessionRedis"]),

        // Replays the fuzzers' seeds and every input that once broke a property (Fuzz/corpus,
        // Fuzz/regressions) through the properties the fuzzers check: Fuzz/Properties, which
        // it compiles itself (Tests/FuzzRegressionTests/Properties is a link to it), so a plain
        // swift build never compiles them.
        .testTarget(name: "FuzzRegressionTests", dependencies: fuzzPropertiesDependencies),
    ],
    swiftLanguageModes: [.v6]
)

// What Fuzz/Properties imports.
var fuzzPropertiesDependencies: [Target.Dependency] { ["SessionCore", "SessionCrypto", "FastCGIServer", "CFastCGI", "SessionApp", "RedisClient"] }

// The libFuzzer harness exists only when deploy/fuzz builds it (SESSION_STORE_FUZZ=1, in its own
// build folder): every target of this package is then compiled with coverage instrumentation and
// AddressSanitizer. A plain `swift build` or `swift test` never sees any of this.
if Context.environment["SESSION_STORE_FUZZ"] == "1" {
    for target in package.targets where target.type != .system {
        target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-sanitize=fuzzer,address"])]
    }
    package.targets += [
        .systemLibrary(name: "CLibFuzzer", path: "Fuzz/CLibFuzzer"),
        // Fuzz/Harness/Properties is a link to Fuzz/Properties.
        .executableTarget(name: "session-store-fuzz", dependencies: fuzzPropertiesDependencies + ["CLibFuzzer"], path: "Fuzz/Harness",
                          swiftSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])],
                          linkerSettings: [.unsafeFlags(["-sanitize=address"])]),
    ]
}
