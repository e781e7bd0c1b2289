import Foundation
import XCTest
import RedisClient
import TestSupport

/// `--encryption-keys-file` and `--store-id-hashes` through real nginx, spawn-fcgi and
/// redis-server: the options reach every instance and the operators' CLI, the service works as
/// before, and Redis holds nothing a reader could use.
final class AtRestEndToEndTests: XCTestCase {
    private static let password = "correct horse battery staple"

    /// A file of `text` (mode 0600) in `directory`.
    private func file(_ name: String, _ text: String, in directory: URL) throws -> URL {
        let url = directory.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
        return url
    }

    /// A users-file line for `user`, hashed by the binary's own `hash-password`.
    private func usersLine(_ user: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.sessionFCGIBinary)
        process.arguments = ["hash-password"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data((Self.password + "\n").utf8))
        try input.fileHandleForWriting.close()
        let hash = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return "\(user):" + hash.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func json(_ response: HTTPResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:]
    }

    /// Operator review s21: a changed keys file was passed over by SIGHUP without a word (keys
    /// are read at start only), and values sealed under a key an instance does not hold were
    /// dropped without a trace, so users just looked logged out. The reload is now refused
    /// with the reason, and such values are counted in the metrics.
    func testAChangedKeysFileIsNotPassedOverAndUnopenedValuesAreCounted() throws {
        let redis = try RedisServerProcess()
        defer { redis.stop() }
        let directory = try Paths.temporaryDirectory("at-rest-keys")
        defer { try? FileManager.default.removeItem(at: directory) }
        func newKey() -> String { Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString() }
        let keys = try file("keys", "k1:\(newKey())\n", in: directory)
        let users = try file("users", try usersLine("ada") + "\n", in: directory)
        let arguments = ["--threads", "2", "--users-file", users.path, "--encryption-keys-file", keys.path]
        let port = FreePort.next()
        let first = try InstanceProcess(socket: .spawnedTCP(port: port), redisURL: redis.url, arguments: arguments, directory: directory)
        var connection = try FastCGIConnection(port: port)
        let body = Array("{\"user\":\"ada\",\"password\":\"\(Self.password)\"}".utf8)
        let login = try connection.request([("REQUEST_METHOD", "POST"), ("DOCUMENT_URI", "/login"), ("REQUEST_URI", "/login"),
                                            ("CONTENT_TYPE", "application/json"), ("CONTENT_LENGTH", String(body.count)),
                                            ("SERVER_PROTOCOL", "HTTP/1.1"), ("REMOTE_ADDR", "127.0.0.1")], body: body)
        XCTAssertEqual(login.status, 200, login.text)
        let cookie = "sid=" + (try XCTUnwrap(login.setCookieValue()))

        // The file now holds another key only; SIGHUP says it is not taken, and k1 stays in use.
        _ = try file("keys", "k2:\(newKey())\n", in: directory)
        kill(first.process.pid, SIGHUP)
        XCTAssertTrue(first.waitForLog(containing: "encryption keys are read at start only", timeout: 10), first.log)
        XCTAssertTrue(first.log.contains("event=reload_failed"), first.log)
        XCTAssertEqual(try connection.get("/me", cookie: cookie).status, 200)
        XCTAssertEqual(first.terminate().status, 0)

        // Restarted with it, the instance cannot open what k1 sealed: counted, not silent.
        let second = try InstanceProcess(socket: .spawnedTCP(port: port), redisURL: redis.url, arguments: arguments, directory: directory)
        connection = try FastCGIConnection(port: port)
        XCTAssertEqual(try connection.get("/me", cookie: cookie).status, 401)
        let metrics = try connection.request(FastCGIConnection.getParams("/metrics") + [("SESSION_FCGI_INTERNAL", "1")])
        let line = try XCTUnwrap(metrics.text.split(separator: "\n").first { $0.hasPrefix("session_sealed_values_unopened_total ") })
        XCTAssertGreaterThan(Int(line.split(separator: " ")[1]) ?? 0, 0, String(line))
        // ... and the log says it (once a second at most per worker), naming no session.
        XCTAssertTrue(second.waitForLog(containing: "event=sealed_value_unopened", timeout: 10), second.log)
        XCTAssertFalse(second.log.contains(String(cookie.dropFirst("sid=".count))))
        XCTAssertEqual(second.terminate().status, 0)
    }

    func testBothOptionsThroughNginxAndTheCLI() throws {
        let mark = UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12)
        let user = "ada.\(mark)", agent = "agent-\(mark)", email = "ada-\(mark)@example.com"
        let key = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let directory = try Paths.temporaryDirectory("at-rest")
        defer { try? FileManager.default.removeItem(at: directory) }
        let keys = try file("keys", "# sealing key\nk1:\(key)\n", in: directory)
        let atRest = ["--encryption-keys-file", keys.path, "--store-id-hashes", "yes"]
        let stack = try SessionStack(instanceCount: 2, threads: 4,
                                     extraArguments: ["--users-file", try file("users", try usersLine(user) + "\n", in: directory).path] + atRest)
        defer { stack.stop() }
        let origin = ("Origin", "http://127.0.0.1:\(stack.nginxPort)")

        var cookies: [String] = [], tokens: [String] = []
        for _ in 0..<2 {
            let login = try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/login",
                                               headers: [origin, ("Content-Type", "application/json"), ("User-Agent", agent)],
                                               body: Array("{\"user\":\"\(user)\",\"password\":\"\(Self.password)\"}".utf8))
            XCTAssertEqual(login.status, 200, login.text)
            cookies.append("sid=" + (try XCTUnwrap(login.setCookieValue())))
            tokens.append(try XCTUnwrap(json(login)["csrfToken"] as? String))
        }
        let set = try HTTPClient.request(port: stack.nginxPort, method: "POST", path: "/attributes",
                                         headers: [origin, ("Content-Type", "application/json"), ("Cookie", cookies[0]), ("X-CSRF-Token", tokens[0])],
                                         body: Array("{\"email\":\"\(email)\"}".utf8))
        XCTAssertEqual(set.status, 200, set.text)
        // Both instances (nginx spreads requests) read what either wrote.
        for _ in 0..<4 {
            let me = json(try stack.get("/me", cookie: cookies[0]))
            XCTAssertEqual(me["user"] as? String, user)
            XCTAssertEqual((me["attributes"] as? [String: String])?["email"], email)
        }
        let listed = json(try stack.get("/sessions", cookie: cookies[1]))["sessions"] as? [[String: Any]]
        XCTAssertEqual(listed?.count, 2)
        XCTAssertEqual(listed?.first?["userAgent"] as? String, agent)

        let log = try String(contentsOf: stack.logFile(port: stack.instancePorts[0]), encoding: .utf8)
        XCTAssertTrue(log.contains("values sealed with AES-256-GCM under key k1") && log.contains("ids hashed"), log)
        XCTAssertFalse(log.contains(key), "the log never shows a key")

        let redis = stack.redis.connection()
        guard case .array(let names) = try redis.send(RedisCommand("KEYS", "*")) else { return XCTFail("KEYS") }
        var text = ""
        for name in names.compactMap(\.text) {
            text += name + "\n"
            if case .array(let items) = try redis.send(RedisCommand("HGETALL", name)) { text += items.compactMap(\.text).joined(separator: "\n") }
            text += (try redis.send(RedisCommand("GET", name)).text ?? "") + "\n"
        }
        XCTAssertTrue(text.contains("enc1:k1:"), "the scan sees the stored values")
        let clear = [user, agent, email] + tokens + cookies.map { String($0.dropFirst("sid=".count)) }
        XCTAssertEqual(clear.filter { text.contains($0) }, [], "readable in Redis")

        // The operators' CLI needs the same options to find the user's sessions; without them
        // it finds none, and says what it lacks rather than only "0 ended".
        let blind = Process()
        blind.executableURL = URL(fileURLWithPath: Paths.sessionFCGIBinary)
        blind.arguments = ["revoke-user", user, "--redis-url", stack.redis.url]
        let blindError = Pipe()
        blind.standardOutput = Pipe()
        blind.standardError = blindError
        try blind.run()
        let warned = String(decoding: blindError.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        blind.waitUntilExit()
        XCTAssertTrue(warned.contains("--encryption-keys-file"), warned)
        for cookie in cookies { XCTAssertEqual(try stack.get("/me", cookie: cookie).status, 200) }

        // The keys file is what it needs: without --store-id-hashes it still reads the hashed
        // names in the index (new-user review s21: it found the index and ended nothing).
        let cli = Process()
        cli.executableURL = URL(fileURLWithPath: Paths.sessionFCGIBinary)
        cli.arguments = ["revoke-user", user, "--redis-url", stack.redis.url, "--encryption-keys-file", keys.path]
        let output = Pipe()
        cli.standardOutput = output
        try cli.run()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        cli.waitUntilExit()
        XCTAssertEqual(cli.terminationStatus, 0)
        XCTAssertTrue(printed.contains("(2 ended)"), printed)
        for cookie in cookies { XCTAssertEqual(try stack.get("/me", cookie: cookie).status, 401) }
    }
}
