import XCTest
import FastCGIServer
import RedisClient
import SessionCore
@testable import SessionApp

final class AppConfigurationTests: XCTestCase {
    private func configuration(_ arguments: [String], _ environment: [String: String] = [:]) throws -> AppConfiguration {
        guard case .serve(let configuration) = try AppConfiguration.parse(arguments: arguments, environment: environment) else {
            throw ConfigurationError("expected a configuration")
        }
        return configuration
    }

    func testDefaultsAreTheDocumentedOnes() throws {
        let config = try configuration([])
        XCTAssertEqual(config.server.listen, .inherited)
        XCTAssertEqual(config.server.threads, 8)
        XCTAssertEqual(config.redis.topology, .single(.tcp(host: "127.0.0.1", port: 6379)))
        XCTAssertEqual(config.keyPrefix, "sid_")
        XCTAssertEqual(config.session.cookieName, "sid")
        XCTAssertEqual(config.idleTimeoutSeconds, 1800)
        XCTAssertEqual(config.session.sameSite, .lax)
        XCTAssertEqual(config.session.securePolicy, .whenHTTPS)
        XCTAssertEqual(config.retryAfterSeconds, 1)
    }

    /// Mistakes an operator makes are named: a variable by its own name, and an idle timeout
    /// that can never apply (found by an operator review).
    func testEnvironmentErrorsNameTheVariableAndAnIdleTimeoutPastTheAbsoluteOneIsWarnedAbout() throws {
        XCTAssertThrowsError(try configuration([], ["SESSION_FCGI_THREADS": "abc"])) { error in
            XCTAssertTrue("\(error)".hasPrefix("SESSION_FCGI_THREADS (--threads): "), "\(error)")
        }
        XCTAssertEqual(try configuration([]).warnings, [])
        let long = try configuration(["--idle-timeout", "50000"])
        XCTAssertEqual(long.warnings.count, 1)
        XCTAssertTrue(long.warnings.first?.contains("--absolute-timeout 43200") ?? false, "\(long.warnings)")
    }

    /// The TLS client key is a secret like the others: a file that cannot be read is refused
    /// with the reason, and one every local user can read is warned about (new-user review s20).
    func testTheTLSClientKeyIsCheckedLikeASecret() throws {
        XCTAssertThrowsError(try configuration(["--redis-tls-key-file", "/nonexistent/client.key"])) { error in
            XCTAssertTrue("\(error)".contains("No such file or directory"), "\(error)")
        }
        let key = FileManager.default.temporaryDirectory.appendingPathComponent("key-\(UUID().uuidString).pem").path
        XCTAssertTrue(FileManager.default.createFile(atPath: key, contents: Data("not really a key\n".utf8), attributes: [.posixPermissions: 0o644]))
        defer { try? FileManager.default.removeItem(atPath: key) }
        XCTAssertTrue(try configuration(["--redis-url", "rediss://127.0.0.1:6379", "--redis-tls-key-file", key, "--redis-tls-cert-file", key]).warnings.contains { $0.contains("readable by every local user") })
        chmod(key, 0o600)
        XCTAssertEqual(try configuration(["--redis-url", "rediss://127.0.0.1:6379", "--redis-tls-key-file", key, "--redis-tls-cert-file", key]).warnings, [])
    }

    func testFlagsOverrideEnvironment() throws {
        let config = try configuration(
            ["--threads", "12", "--redis-url=redis://10.1.2.3:7000/1", "--key-prefix", "app:sid_", "--listen", "127.0.0.1:9100"],
            ["SESSION_FCGI_THREADS": "3", "REDIS_URL": "redis://elsewhere:1", "SESSION_FCGI_IDLE_TIMEOUT": "60"])
        XCTAssertEqual(config.server.threads, 12)
        XCTAssertEqual(config.redis.topology, .single(.tcp(host: "10.1.2.3", port: 7000)))
        XCTAssertEqual(config.redis.database, 1)
        XCTAssertEqual(config.keyPrefix, "app:sid_")
        XCTAssertEqual(config.server.listen, .tcp(host: "127.0.0.1", port: 9100))
        XCTAssertEqual(config.idleTimeoutSeconds, 60)
    }

    func testTimeoutsSurviveARedisURLGivenLater() throws {
        let config = try configuration(["--redis-timeout-ms", "50", "--redis-wait-timeout-ms", "20", "--redis-url", "redis://h:1"])
        XCTAssertEqual(config.redisConfiguration.commandTimeoutMilliseconds, 50)
    }

    /// The touch interval defaults to a thirtieth of the idle timeout (at most 60 s), can be 0,
    /// and can never reach more than half the idle timeout (a session in use could expire).
    func testTouchIntervalDefaultsFollowTheIdleTimeoutAndStayBelowHalfOfIt() throws {
        XCTAssertEqual(try configuration([]).timeouts.touchIntervalSeconds, 60)
        XCTAssertEqual(try configuration(["--idle-timeout", "300"]).timeouts.touchIntervalSeconds, 10)
        XCTAssertEqual(try configuration(["--idle-timeout", "20"]).timeouts.touchIntervalSeconds, 0)
        XCTAssertEqual(try configuration(["--idle-timeout", "86400"]).timeouts.touchIntervalSeconds, 60)
        XCTAssertEqual(try configuration(["--touch-interval", "0"]).timeouts.touchIntervalSeconds, 0)
        XCTAssertEqual(try configuration(["--touch-interval", "900"]).timeouts.touchIntervalSeconds, 900)
        XCTAssertEqual(try configuration([], ["SESSION_FCGI_TOUCH_INTERVAL": "5"]).timeouts.touchIntervalSeconds, 5)
        XCTAssertEqual(try configuration(["--idle-timeout", "60", "--touch-interval", "30"]).timeouts.touchIntervalSeconds, 30)
        XCTAssertThrowsError(try configuration(["--idle-timeout", "60", "--touch-interval", "31"])) { error in
            XCTAssertTrue("\(error)".contains("--touch-interval") && "\(error)".contains("half"), "\(error)")
        }
        XCTAssertThrowsError(try configuration(["--touch-interval", "-1"]))
    }

    func testInvalidValuesAreRefusedWithTheirFlag() {
        let cases: [[String]] = [
            ["--threads", "0"], ["--threads", "many"], ["--idle-timeout", "-5"], ["--redis-url", "http://x"],
            ["--cookie-name", "bad name"], ["--cookie-name", "a;b"], ["--key-prefix", "has space"],
            ["--cookie-samesite", "sometimes"], ["--cookie-secure", "maybe"], ["--listen", "nowhere"],
            ["--cookie-path", "relative"], ["--unknown", "1"], ["--threads"],
        ]
        for arguments in cases {
            XCTAssertThrowsError(try configuration(arguments), "\(arguments)") { error in
                let message = (error as? ConfigurationError)?.message ?? ""
                XCTAssertTrue(message.contains(arguments[0]), "\(message) should name \(arguments[0])")
            }
        }
    }

    func testHostPrefixedCookieNeedsSecurePathRootAndNoDomain() throws {
        for name in ["__Host-sid", "__host-sid", "__HOST-SID"] {
            XCTAssertThrowsError(try configuration(["--cookie-name", name]), name)
            XCTAssertThrowsError(try configuration(["--cookie-name", name, "--cookie-secure", "always", "--cookie-domain", "example.com"]))
            XCTAssertThrowsError(try configuration(["--cookie-name", name, "--cookie-secure", "always", "--cookie-path", "/app"]))
            XCTAssertNoThrow(try configuration(["--cookie-name", name, "--cookie-secure", "always"]))
        }
        XCTAssertThrowsError(try configuration(["--cookie-name", "__Secure-sid"]))
        XCTAssertThrowsError(try configuration(["--cookie-name", "__secure-sid"]))
    }

    /// The help lists every option; the expected flags are written out here, not taken from the
    /// table that also makes the help (a test of a table against itself cannot fail).
    func testHelpListsEveryOptionAndItsEnvironmentVariable() throws {
        guard case .help(let text) = try AppConfiguration.parse(arguments: ["--help"], environment: [:]) else {
            return XCTFail("expected help")
        }
        let expected: [(String, String)] = [
            ("--listen", "SESSION_FCGI_LISTEN"), ("--threads", "SESSION_FCGI_THREADS"), ("--redis-url", "REDIS_URL"),
            ("--redis-password-file", "SESSION_FCGI_REDIS_PASSWORD_FILE"), ("--redis-timeout-ms", "SESSION_FCGI_REDIS_TIMEOUT_MS"),
            ("--key-prefix", "SESSION_FCGI_KEY_PREFIX"), ("--idle-timeout", "SESSION_FCGI_IDLE_TIMEOUT"),
            ("--absolute-timeout", "SESSION_FCGI_ABSOLUTE_TIMEOUT"), ("--rotation-grace", "SESSION_FCGI_ROTATION_GRACE"),
            ("--max-sessions-per-user", "SESSION_FCGI_MAX_SESSIONS_PER_USER"), ("--users-file", "SESSION_FCGI_USERS_FILE"),
            ("--admin-token-file", "SESSION_FCGI_ADMIN_TOKEN_FILE"), ("--cookie-signing-keys-file", "SESSION_FCGI_COOKIE_SIGNING_KEYS_FILE"),
            ("--cookie-name", "SESSION_FCGI_COOKIE_NAME"), ("--log-file", "SESSION_FCGI_LOG_FILE"),
        ]
        for (flag, variable) in expected {
            XCTAssertTrue(text.contains("  \(flag) "), flag)
            XCTAssertTrue(text.contains("env: \(variable)\n"), variable)
        }
        XCTAssertFalse(text.contains("env: \n"), "every option has an environment variable")
    }

    /// Logins are let in only as far as standby workers allow (review s19): a configuration
    /// where a login must take the last standby worker, or that asks for more password checks
    /// than the threads allow, is warned of.
    func testLoginBoundsThatTheThreadsCannotHoldAreWarnedOf() throws {
        func warnings(_ arguments: [String]) throws -> [String] {
            guard case .serve(let configuration) = try AppConfiguration.parse(arguments: ["--users-file", "/etc/users"] + arguments, environment: [:]) else {
                return []
            }
            return configuration.warnings
        }
        XCTAssertEqual(try warnings([]), [])
        XCTAssertTrue(try warnings(["--threads", "3"]).contains { $0.contains("leaves 1 standby workers") })
        XCTAssertTrue(try warnings(["--threads", "8", "--login-concurrency", "6"]).contains { $0.contains("5 password checks run at once") })
        XCTAssertEqual(try warnings(["--threads", "8", "--login-concurrency", "5"]), [])
    }

    /// A mistyped option names the one it most likely meant (new-user review s19: --help is
    /// about 150 lines); nothing is suggested for what is not close to any.
    func testAMistypedOptionSuggestsTheNearestOne() {
        func message(_ arguments: [String]) -> String {
            do { _ = try AppConfiguration.parse(arguments: arguments, environment: [:]) } catch { return error.message }
            return ""
        }
        XCTAssertEqual(message(["--idle-timout", "60"]), "unknown option '--idle-timout'; did you mean --idle-timeout? (see --help)")
        XCTAssertTrue(message(["--thraeds", "4"]).contains("did you mean --threads?"))
        XCTAssertEqual(message(["--frobnicate", "1"]), "unknown option '--frobnicate' (see --help)")
    }

    /// `--version` (or `-V`) prints the release and the hiredis of the build, before or after
    /// other options and without reaching Redis; the help names it.
    func testVersionNamesTheReleaseAndHiredis() throws {
        for arguments in [["--version"], ["-V"], ["--threads", "4", "--version"], ["check-config", "--version"]] {
            guard case .version(let line) = try AppConfiguration.parse(arguments: arguments, environment: [:]) else {
                return XCTFail("expected the version for \(arguments)")
            }
            XCTAssertTrue(line.hasPrefix("session-fcgi \(ProductVersion.number) (build \(ProductVersion.build), hiredis 0.14."), line)
        }
        XCTAssertNotNil(ProductVersion.number.split(separator: ".").compactMap { Int($0) }.count == 3 ? ProductVersion.number : nil,
                        "semantic version: \(ProductVersion.number)")
        guard case .help(let text) = try AppConfiguration.parse(arguments: ["--help"], environment: [:]) else { return XCTFail("expected help") }
        XCTAssertTrue(text.contains("  --version\n"))
    }

    /// Review finding 10: secrets had to be given on the command line, where `ps` shows them.
    func testSecretsComeFromFilesAndWeakOnesAreRefused() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func file(_ name: String, _ text: String, mode: Int = 0o600) throws -> String {
            let url = directory.appendingPathComponent(name)
            try text.write(to: url, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
            return url.path
        }
        let token = "a8Kq2ZxW7mVt4NpR9sLc3HyB6dFg1JuE0oTi"
        let keys = "Yk3vQ9pLx2RmT7wZs4NcJ8bHd6FgA1eU\n# old key, still verifying\np0Oi9Uy8Tr7Ee6Ww5Qq4Aa3Ss2Dd1Ff0Gg\n"
        let config = try configuration([
            "--redis-url", "redis://:in-url@127.0.0.1:6379",
            "--redis-password-file", try file("redis", "from-file\n"),
            "--admin-token-file", try file("token", token + "\n"),
            "--cookie-signing-keys-file", try file("keys", keys, mode: 0o644),
        ])
        XCTAssertEqual(config.redisConfiguration.password, "from-file", "the file wins over the URL")
        XCTAssertEqual(config.adminToken, token)
        XCTAssertEqual(config.cookieSigningKeys, ["Yk3vQ9pLx2RmT7wZs4NcJ8bHd6FgA1eU", "p0Oi9Uy8Tr7Ee6Ww5Qq4Aa3Ss2Dd1Ff0Gg"])
        XCTAssertEqual(config.warnings.count, 1, "a world-readable key file is warned about: \(config.warnings)")
        XCTAssertFalse(config.warnings.joined().contains("Yk3v"), "warnings never quote a secret")
        let weak = [String(repeating: "k", count: 40), String(repeating: "ab", count: 20), "short"]
        for key in weak {
            XCTAssertThrowsError(try configuration(["--cookie-signing-keys", key]), key)
            XCTAssertThrowsError(try configuration(["--admin-token", key]), key)
        }
        XCTAssertThrowsError(try configuration(["--admin-token-file", directory.appendingPathComponent("missing").path])) { error in
            XCTAssertTrue("\(error)".contains("--admin-token-file"))
        }
        XCTAssertThrowsError(try configuration(["--redis-password-file", try file("empty", "\n")]))

        // Operator review s22: a user name without its colon was read as a password and silently
        // replaced by the file. With a file, that form is refused, naming the fix.
        let passwordFile = try file("acl-password", "acl-secret\n")
        XCTAssertThrowsError(try configuration(["--redis-url", "redis://session-store@127.0.0.1:6379", "--redis-password-file", passwordFile])) { error in
            XCTAssertTrue("\(error)".contains("redis://NAME:@host:port"), "\(error)")
            XCTAssertFalse("\(error)".contains("session-store"), "the word may be a password: never quoted")
        }
        let named = try configuration(["--redis-url", "redis://session-store:@127.0.0.1:6379", "--redis-password-file", passwordFile])
        XCTAssertEqual(named.redisConfiguration.username, "session-store")
        XCTAssertEqual(named.redisConfiguration.password, "acl-secret")
        XCTAssertEqual(try configuration(["--redis-url", "redis://lone-password@127.0.0.1:6379"]).redisConfiguration.password, "lone-password",
                       "without a file, a lone word stays a password (as redis-cli and Lettuce read it)")

        // The Sentinels' own password: only with a Sentinel URL, and apart from the data nodes'.
        let sentinel = try configuration(["--redis-url", "redis-sentinel://:data@s1:26379,s2:26379/mymaster",
                                          "--redis-sentinel-password-file", try file("sentinel", "watchers\n"),
                                          "--redis-sentinel-user", "watcher"])
        XCTAssertEqual(sentinel.redisConfiguration.password, "data")
        XCTAssertEqual(sentinel.redisConfiguration.sentinelPassword, "watchers")
        XCTAssertEqual(sentinel.redisConfiguration.sentinelUsername, "watcher")
        XCTAssertFalse(sentinel.redisConfiguration.description.contains("watchers"), "never in what is logged")
        XCTAssertThrowsError(try configuration(["--redis-url", "redis://h", "--redis-sentinel-password-file", try file("s2", "x\n")])) { error in
            XCTAssertTrue("\(error)".contains("redis-sentinel://"), "\(error)")
        }
        XCTAssertThrowsError(try configuration(["--redis-url", "redis-sentinel://s:1/m", "--redis-sentinel-user", "u"]))
    }

    func testRedisTopologyAndTLSOptions() throws {
        let cluster = try configuration(["--redis-url", "rediss-cluster://a:7000,b:7001", "--redis-tls-server-name", "redis.internal"])
        XCTAssertEqual(cluster.redisConfiguration.topology, .cluster(seeds: [.tcp(host: "a", port: 7000), .tcp(host: "b", port: 7001)]))
        XCTAssertEqual(cluster.redisConfiguration.tls?.serverName, "redis.internal")
        XCTAssertEqual(cluster.redisConfiguration.tls?.insecure, false)
        XCTAssertThrowsError(try configuration(["--redis-url", "redis://h", "--redis-tls-server-name", "x"])) { error in
            XCTAssertTrue("\(error)".contains("rediss"), "\(error)")
        }
        XCTAssertThrowsError(try configuration(["--redis-tls-ca-file", "/nonexistent/ca.pem", "--redis-url", "rediss://h"])) { error in
            XCTAssertTrue("\(error)".contains("--redis-tls-ca-file"))
        }
        XCTAssertThrowsError(try configuration(["--redis-url", "redis-sentinel://s:26379"])) { error in
            XCTAssertTrue("\(error)".contains("--redis-url") && "\(error)".contains("master name"), "\(error)")
        }
        XCTAssertThrowsError(try configuration(["--redis-wait-timeout-ms", "600"]), "the wait must fit in the command timeout")
        XCTAssertNil(try configuration([]).redisWaitReplicas, "auto by default")
        XCTAssertEqual(try configuration(["--redis-wait-replicas", "2"]).redisWaitReplicas, 2)
    }

    /// `--encryption-keys-file`: `key-id:base64-of-32-bytes` lines, comments and blank lines
    /// ignored, the first key seals; every bad line stops the start naming its line, and
    /// nothing ever quotes a key.
    func testEncryptionKeysFileAndIDHashes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func file(_ text: String, mode: Int = 0o600) throws -> String {
            let url = directory.appendingPathComponent(UUID().uuidString)
            try text.write(to: url, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
            return url.path
        }
        func randomKey(_ count: Int = 32) -> String {
            var generator = SystemRandomNumberGenerator()
            return Base64.encode((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }, .standard)
        }
        let (new, old) = (randomKey(), randomKey())

        let plain = try configuration([])
        XCTAssertEqual(plain.encryptionKeys, [])
        XCTAssertFalse(plain.storeIDHashes)
        XCTAssertNil(try plain.makeLayout().sealer, "off by default")
        XCTAssertNil(try plain.makeLayout().idHasher, "off by default")

        let path = try file("# rotated in on Monday\n\nk2:\(new)\n  k1:\(old)  \r\n# k0 retired\n")
        let config = try configuration(["--encryption-keys-file", path, "--store-id-hashes", "yes"])
        XCTAssertEqual(config.encryptionKeys.map(\.id), ["k2", "k1"])
        XCTAssertEqual(config.warnings, [])
        XCTAssertTrue(config.storeIDHashes)
        let layout = try config.makeLayout()
        XCTAssertEqual(layout.sealer?.keyIDs, ["k2", "k1"], "the first line seals")
        XCTAssertNotNil(layout.idHasher)
        XCTAssertTrue(config.atRestSummary.contains("k2") && config.atRestSummary.contains("k1"))
        let fromEnvironment = try configuration([], ["SESSION_FCGI_ENCRYPTION_KEYS_FILE": path, "SESSION_FCGI_STORE_ID_HASHES": "yes"])
        XCTAssertEqual(fromEnvironment.encryptionKeys, config.encryptionKeys)
        XCTAssertTrue(fromEnvironment.storeIDHashes)

        let readable = try configuration(["--encryption-keys-file", try file("k1:\(new)\n", mode: 0o644)])
        XCTAssertEqual(readable.warnings.count, 1, "a key file others can read is warned about")

        let refused: [(text: String, line: Int, why: String)] = [
            ("k1:\(new)\n\(old)\n", 2, "expected key-id:base64"),
            ("# c\nkey one:\(new)\n", 2, "key id"),
            ("k1:\(new)\nk2:not*base64\n", 2, "not base64"),
            ("\n\nk1:\(randomKey(16))\n", 3, "16 bytes"),
            ("k1:\(new)\nk1:\(old)\n", 2, "repeats line 1"),
            ("k1:\(new)\nk2:\(new)\n", 2, "same key as line 1"),
            ("k1:\(Base64.encode([UInt8](repeating: 0, count: 32), .standard))\n", 1, "predictable"),
            ("k1:\(new.dropLast())\n", 1, "not base64"),
        ]
        for (text, line, why) in refused {
            XCTAssertThrowsError(try configuration(["--encryption-keys-file", try file(text)]), text) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains("--encryption-keys-file: line \(line):") && message.contains(why), message)
                XCTAssertFalse(message.contains(new.prefix(12)) || message.contains(old.prefix(12)), "an error quoted a key: \(message)")
            }
        }
        XCTAssertThrowsError(try configuration(["--encryption-keys-file", try file("# only a comment\n")])) { error in
            XCTAssertTrue("\(error)".contains("no keys"), "\(error)")
        }
        XCTAssertThrowsError(try configuration(["--store-id-hashes", "maybe"]))
        XCTAssertTrue(AppConfiguration.helpText.contains("--encryption-keys-file") && AppConfiguration.helpText.contains("--store-id-hashes"))
    }

    func testKeyPrefixesCannotChangeTheClusterSlot() {
        XCTAssertThrowsError(try configuration(["--key-prefix", "s{x}_"]))
        XCTAssertThrowsError(try configuration(["--user-key-prefix", "u{"]))
        XCTAssertThrowsError(try configuration(["--key-prefix", "same_", "--user-key-prefix", "same_"]))
        XCTAssertEqual(try configuration(["--max-sessions-per-user", "5"]).limits.maxSessionsPerUser, 5)
        XCTAssertEqual(try configuration([]).limits.maxSessionsPerUser, 20)
    }
}

final class ResponseTests: XCTestCase {
    func testSerializedResponseIsACGIResponseWithLength() {
        let response = FastCGIResponse(status: 405, headers: [("Allow", "GET")], body: Array("{}".utf8))
        XCTAssertEqual(String(decoding: response.serialized(), as: UTF8.self),
                       "Status: 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 2\r\n\r\n{}")
    }

    /// Every status the routes answer with has its own reason phrase (a 409 went out as
    /// "409 Status").
    func testEveryStatusTheRoutesUseHasItsReasonPhrase() {
        for status in [200, 204, 302, 303, 400, 401, 403, 404, 405, 409, 413, 415, 429, 431, 500, 503] {
            let line = String(decoding: FastCGIResponse(status: status, headers: [], body: []).serialized(), as: UTF8.self)
                .prefix { $0 != "\r" }
            XCTAssertFalse(line.hasSuffix(" Status"), line.description)
        }
        XCTAssertTrue(String(decoding: FastCGIResponse(status: 409, headers: [], body: []).serialized(), as: UTF8.self)
            .hasPrefix("Status: 409 Conflict\r\n"))
    }

    func testHeaderValuesCannotSplitTheResponse() {
        let response = FastCGIResponse(status: 200, headers: [("X", "a\r\nSet-Cookie: evil=1"), ("Y", "b\nc\u{0}d\u{7f}e\tf"),
                                                                ("Bad Name", "v"), ("Bad\r\nName", "v"), ("", "v")])
        let text = String(decoding: response.serialized(), as: UTF8.self)
        XCTAssertFalse(text.contains("\r\nSet-Cookie"))
        XCTAssertTrue(text.contains("\r\nY: bcde\tf\r\n"), text)
        XCTAssertFalse(text.contains("Bad"), "a header whose name is not a token is dropped")
        XCTAssertEqual(text.components(separatedBy: "\r\n").filter { $0.hasPrefix(":") }.count, 0)
    }

    func testJSONEscaping() {
        XCTAssertEqual(JSON.quoted("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"")
        XCTAssertEqual(String(decoding: JSON.object([("count", "3")]), as: UTF8.self), "{\"count\":3}")
    }

    func testLogfmtValuesAreBareTokensOrEscapedStrings() {
        XCTAssertEqual(LogfmtLogHandler.quoted("created"), "created")
        XCTAssertEqual(LogfmtLogHandler.quoted(""), "\"\"")
        XCTAssertEqual(LogfmtLogHandler.quoted("a=b c"), "\"a=b c\"")
        XCTAssertEqual(LogfmtLogHandler.quoted("x\ny\u{7F}\"z"), "\"x\\ny\\u007f\\\"z\"", "no line break or control byte reaches a log line")
    }

    func testRouterAnswers404And405WithAllow() {
        var router = Router()
        router.add("GET", "/count") { _ in FastCGIResponse(status: 200) }
        router.add("POST", "/count") { _ in FastCGIResponse(status: 201) }
        router.addStaged("GET", "/me") { _ in .answered(FastCGIResponse(status: 202)) }
        router.addPrompt("GET", "/livez") { _ in FastCGIResponse(status: 203) }
        func status(_ method: String, _ path: String) -> (status: Int, allow: String?) {
            let request = FastCGIRequest(params: ["REQUEST_METHOD": method, "DOCUMENT_URI": path])
            switch router.match(request).match {
            case .answered(let response): return (response.status, response.header("Allow"))
            case .prompt(let handler), .blocking(let handler): return (handler(request).status, nil)
            case .staged(let handler):
                guard case .answered(let response) = handler(request) else { return (-1, nil) }
                return (response.status, nil)
            }
        }
        XCTAssertEqual(status("GET", "/count").status, 200)
        XCTAssertEqual(status("GET", "/count/").status, 404)
        XCTAssertEqual(status("GET", "/nope").status, 404)
        XCTAssertEqual(status("DELETE", "/count").status, 405)
        XCTAssertEqual(status("DELETE", "/count").allow, "GET, HEAD, POST")
        // Review finding 9: HEAD is GET without a body (RFC 9110), not a 405.
        XCTAssertEqual(status("HEAD", "/count").status, 200)
        XCTAssertEqual(status("POST", "/count").status, 201)
        XCTAssertEqual(status("GET", "/me").status, 202, "a staged route is found like any other")
        XCTAssertEqual(status("HEAD", "/me").status, 202)
        XCTAssertEqual(status("POST", "/me").allow, "GET, HEAD")
        XCTAssertEqual(status("GET", "/livez").status, 203)
    }

    func testRequestPathFallsBackToRequestURIWithoutQuery() {
        XCTAssertEqual(FastCGIRequest(params: ["REQUEST_URI": "/count?x=1"]).path, "/count")
        XCTAssertEqual(FastCGIRequest(params: ["DOCUMENT_URI": "/a", "REQUEST_URI": "/b"]).path, "/a")
        XCTAssertTrue(FastCGIRequest(params: ["HTTPS": "on"]).isHTTPS)
        XCTAssertFalse(FastCGIRequest(params: ["HTTPS": ""]).isHTTPS)
    }

    func testListenAddresses() {
        XCTAssertEqual(ListenAddress(parsing: "127.0.0.1:9001"), .tcp(host: "127.0.0.1", port: 9001))
        XCTAssertEqual(ListenAddress(parsing: ":9001"), .tcp(host: nil, port: 9001))
        XCTAssertEqual(ListenAddress(parsing: "/run/s.sock"), .unix(path: "/run/s.sock"))
        XCTAssertEqual(ListenAddress(parsing: "unix:/run/s.sock"), .unix(path: "/run/s.sock"))
        XCTAssertNil(ListenAddress(parsing: "127.0.0.1"))
        XCTAssertNil(ListenAddress(parsing: "h:99999"))
    }
}

final class FastCGIParamsTests: XCTestCase {
    func testLookupIsExactAndFirstWins() {
        var params = FastCGIParams()
        params.append(name: Array("HTTP_COOKIE".utf8), value: Array("sid=1".utf8))
        params.append(name: Array("HTTPS".utf8), value: Array("on".utf8))
        params.append(name: Array("HTTP_COOKIE".utf8), value: Array("later".utf8))
        params.append(name: Array("EMPTY".utf8), value: [])
        XCTAssertEqual(params["HTTP_COOKIE"], "sid=1")
        XCTAssertEqual(params["HTTPS"], "on")
        XCTAssertEqual(params["EMPTY"], "")
        XCTAssertNil(params["HTTP"])
        XCTAssertNil(params["HTTPS_"])
        XCTAssertEqual(params.length(of: "HTTP_COOKIE"), 5)
        XCTAssertTrue(params.has("HTTPS", equalTo: "on"))
        XCTAssertFalse(params.has("HTTPS", equalTo: "o"))
        XCTAssertEqual(params.count, 4)
        XCTAssertEqual(params.all.first?.value, "sid=1")
    }

    func testJSONIntegerObject() {
        XCTAssertEqual(String(decoding: JSON.integerObject("count", 42), as: UTF8.self), "{\"count\":42}")
        XCTAssertEqual(String(decoding: JSON.integerObject("count", -1), as: UTF8.self), "{\"count\":-1}")
        XCTAssertEqual(String(decoding: JSON.integerObject("count", 0), as: UTF8.self), "{\"count\":0}")
        XCTAssertEqual(String(decoding: JSON.integerObject("count", .min), as: UTF8.self), "{\"count\":-9223372036854775808}")
    }
}
