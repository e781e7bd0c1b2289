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

        let cli = Process()
        cli.executableURL = URL(fileURLWithPath: Paths.sessionFCGIBinary)
        cli.arguments = ["revoke-user", user, "--redis-url", stack.redis.url] + atRest
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
