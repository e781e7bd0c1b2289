import Foundation
import XCTest
import SessionCore
import SessionCrypto
import TestSupport

/// The trusted-login keys on SIGHUP, in a real instance: they follow their file whatever else
/// the reload refuses, and fail closed, so emptying the file withdraws a leaked key at once
/// (Sources/SessionApp/Application.swift; the load itself is unit-tested in
/// Tests/SessionAppTests/TrustedLoginTests.swift).
final class TrustedLoginReloadEndToEndTests: XCTestCase {
    private static let key = "kT3vX9qL2mZ8wR5nB7cY4hJ6fD1sG0aPeUiOq"
    private static let adminToken = "a8Kq2ZxW7mVt4NpR9sLc3HyB6dFg1JuE0oTi"

    /// The request nginx's internal /_session_login location makes for an application's assertion.
    private static func trustedLoginParams(user: String, key: String = key) -> [(String, String)] {
        let expires = String(Int(Date().timeIntervalSince1970) + 60)
        let nonce = "n" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        let message = "session-store trusted-login v1\n\(user)\n\(expires)\n\(nonce)\n\n"
        let mac = Base64.encode(SessionCrypto.hmacSHA256(key: Array(key.utf8), message: Array(message.utf8)) ?? [])
        let query = "user=\(user)&expires=\(expires)&nonce=\(nonce)&mac=\(mac)"
        var params = FastCGIConnection.getParams("/trusted-login")
        params.removeAll { $0.0 == "QUERY_STRING" }
        return params + [("QUERY_STRING", query), ("SESSION_FCGI_TRUSTED_LOGIN", "1")]
    }

    func testAWithdrawnKeyStopsWorkingEvenWhenAnotherFileBreaksTheReload() throws {
        let redis = try RedisServerProcess()
        defer { redis.stop() }
        let directory = try Paths.temporaryDirectory("trusted-reload")
        defer { try? FileManager.default.removeItem(at: directory) }
        let keys = directory.appendingPathComponent("trusted-login-keys")
        let token = directory.appendingPathComponent("admin-token")
        try (Self.key + "\n").write(to: keys, atomically: true, encoding: .utf8)
        try (Self.adminToken + "\n").write(to: token, atomically: true, encoding: .utf8)
        chmod(keys.path, 0o600)
        chmod(token.path, 0o600)
        let port = FreePort.next()
        let server = try InstanceProcess(socket: .spawnedTCP(port: port), redisURL: redis.url,
                                         arguments: ["--threads", "2", "--trusted-login-keys-file", keys.path, "--admin-token-file", token.path],
                                         directory: directory)
        let connection = try FastCGIConnection(port: port)
        XCTAssertEqual(try connection.request(Self.trustedLoginParams(user: "ada")).status, 303, server.log)
        /// SIGHUP, then waits for `text` among the lines logged after it.
        func reload(waitingFor text: String) -> Bool {
            let before = server.log.utf8.count
            kill(server.process.pid, SIGHUP)
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                let log = Array(server.log.utf8)
                if log.count > before, String(decoding: log[before...], as: UTF8.self).contains(text) { return true }
                usleep(10_000)
            }
            return false
        }

        // The key leaked: the operator empties the file and reloads, while the admin token file
        // has just been broken (a reload that refuses every other setting).
        try "# withdrawn\n".write(to: keys, atomically: true, encoding: .utf8)
        try "short\n".write(to: token, atomically: true, encoding: .utf8)
        XCTAssertTrue(reload(waitingFor: "the previous settings stay in use"), server.log)
        let refused = try connection.request(Self.trustedLoginParams(user: "ada"))
        XCTAssertEqual(refused.status, 404, "the withdrawn key must stop working at this reload: \(server.log)")

        // A weak key in its place turns trusted login off too, and says so.
        try (Self.adminToken + "\n").write(to: token, atomically: true, encoding: .utf8)
        try "short\n".write(to: keys, atomically: true, encoding: .utf8)
        XCTAssertTrue(reload(waitingFor: "trusted login is off until the file holds usable keys"), server.log)
        XCTAssertEqual(try connection.request(Self.trustedLoginParams(user: "ada")).status, 404)

        // A new key: working again.
        let newKey = "Zp8Lw2Qx7Nc4Rv9Tb6Ym1Ks3Jd5Hf0GaEuIo"
        try (newKey + "\n").write(to: keys, atomically: true, encoding: .utf8)
        XCTAssertTrue(reload(waitingFor: "trusted-login keys and admin token reloaded"), server.log)
        XCTAssertEqual(try connection.request(Self.trustedLoginParams(user: "ada", key: newKey)).status, 303, server.log)
        XCTAssertEqual(try connection.request(Self.trustedLoginParams(user: "ada")).status, 403, "the old key stays withdrawn")
        XCTAssertFalse(server.log.contains(Self.key) || server.log.contains(newKey), "keys are never logged")
        XCTAssertEqual(server.terminate().status, 0)
    }
}
