// swift-tools-version:6.0
import PackageDescription

// Layers, bottom up: C shims → Redis client / sessions core → Redis store / FastCGI server
// → application → executable. No Swift package dependencies: a fresh CI clone builds in seconds.
let package = Package(
    name: "session-store",
    products: [
        .executable(name: "session-fcgi", targets: ["session-fcgi"]),
        .library(name: "SessionCore", targets: ["SessionCore"]),
        .library(name: "SessionRedis", targets: ["SessionRedis"]),
        .library(name: "FastCGIServer", targets: ["FastCGIServer"]),
    ],
    targets: [
        .systemLibrary(name: "CFastCGI", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CCrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "COpenSSL", providers: [.apt(["libssl-dev"])]),
        .target(name: "SessionCrypto", dependencies: ["CCrypto", "SessionCore"]),
        .target(name: "RedisClient", dependencies: ["CHiredis", "COpenSSL"]),
        .target(name: "SessionCore"),
        .target(name: "SessionRedis", dependencies: ["SessionCore", "RedisClient"]),
        .target(name: "FastCGIServer", dependencies: ["CFastCGI"]),
        .target(name: "SessionApp", dependencies: ["SessionCore", "SessionRedis", "FastCGIServer", "RedisClient", "SessionCrypto"]),
        .executableTarget(name: "session-fcgi", dependencies: ["SessionApp"]),

        .target(name: "TestSupport", dependencies: ["RedisClient"], path: "Tests/TestSupport"),
        .testTarget(name: "SessionCoreTests", dependencies: ["SessionCore", "SessionCrypto"]),
        .testTarget(name: "SessionCryptoTests", dependencies: ["SessionCrypto", "SessionCore"]),
        .testTarget(name: "RedisClientTests", dependencies: ["RedisClient", "TestSupport"]),
        .testTarget(name: "SessionRedisTests", dependencies: ["SessionRedis", "SessionCore", "SessionCrypto", "TestSupport"]),
        .testTarget(name: "SessionAppTests", dependencies: ["SessionApp", "SessionCore", "FastCGIServer"]),
        .testTarget(name: "EndToEndTests", dependencies: ["TestSupport", "RedisClient", "session-fcgi"]),
    ],
    swiftLanguageModes: [.v6]
)
