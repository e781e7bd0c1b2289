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
        XCTAssertEqual(config.redis.address, .tcp(host: "127.0.0.1", port: 6379))
        XCTAssertEqual(config.keyPrefix, "sid_")
        XCTAssertEqual(config.session.cookieName, "sid")
        XCTAssertEqual(config.session.idleTimeoutSeconds, 1800)
        XCTAssertEqual(config.session.sameSite, .lax)
        XCTAssertEqual(config.session.securePolicy, .whenHTTPS)
        XCTAssertEqual(config.retryAfterSeconds, 1)
    }

    func testFlagsOverrideEnvironment() throws {
        let config = try configuration(
            ["--threads", "12", "--redis-url=redis://10.1.2.3:7000/1", "--key-prefix", "app:sid_", "--listen", "127.0.0.1:9100"],
            ["SESSION_FCGI_THREADS": "3", "REDIS_URL": "redis://elsewhere:1", "SESSION_FCGI_IDLE_TIMEOUT": "60"])
        XCTAssertEqual(config.server.threads, 12)
        XCTAssertEqual(config.redis.address, .tcp(host: "10.1.2.3", port: 7000))
        XCTAssertEqual(config.redis.database, 1)
        XCTAssertEqual(config.keyPrefix, "app:sid_")
        XCTAssertEqual(config.server.listen, .tcp(host: "127.0.0.1", port: 9100))
        XCTAssertEqual(config.session.idleTimeoutSeconds, 60)
    }

    func testTimeoutsSurviveARedisURLGivenLater() throws {
        let config = try configuration(["--redis-timeout-ms", "50", "--redis-url", "redis://h:1"])
        XCTAssertEqual(config.redis.commandTimeoutMilliseconds, 50)
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
        XCTAssertThrowsError(try configuration(["--cookie-name", "__Host-sid"]))
        XCTAssertThrowsError(try configuration(["--cookie-name", "__Host-sid", "--cookie-secure", "always", "--cookie-domain", "example.com"]))
        XCTAssertThrowsError(try configuration(["--cookie-name", "__Host-sid", "--cookie-secure", "always", "--cookie-path", "/app"]))
        XCTAssertNoThrow(try configuration(["--cookie-name", "__Host-sid", "--cookie-secure", "always"]))
        XCTAssertThrowsError(try configuration(["--cookie-name", "__Secure-sid"]))
    }

    func testHelpListsEveryOptionAndItsEnvironmentVariable() throws {
        guard case .help(let text) = try AppConfiguration.parse(arguments: ["--help"], environment: [:]) else {
            return XCTFail("expected help")
        }
        for option in AppConfiguration.options {
            XCTAssertTrue(text.contains(option.flag), option.flag)
            XCTAssertTrue(text.contains(option.environment), option.environment)
        }
    }
}

final class ResponseTests: XCTestCase {
    func testSerializedResponseIsACGIResponseWithLength() {
        let response = FastCGIResponse(status: 405, headers: [("Allow", "GET")], body: Array("{}".utf8))
        XCTAssertEqual(String(decoding: response.serialized(), as: UTF8.self),
                       "Status: 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 2\r\n\r\n{}")
    }

    func testHeaderValuesCannotSplitTheResponse() {
        let response = FastCGIResponse(status: 200, headers: [("X", "a\r\nSet-Cookie: evil=1")])
        XCTAssertFalse(String(decoding: response.serialized(), as: UTF8.self).contains("\r\nSet-Cookie"))
    }

    func testJSONEscaping() {
        XCTAssertEqual(JSON.quoted("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"")
        XCTAssertEqual(String(decoding: JSON.object([("count", "3")]), as: UTF8.self), "{\"count\":3}")
    }

    func testRouterAnswers404And405WithAllow() {
        var router = Router()
        router.add("GET", "/count") { _ in FastCGIResponse(status: 200) }
        router.add("HEAD", "/count") { _ in FastCGIResponse(status: 200) }
        func request(_ method: String, _ path: String) -> FastCGIRequest {
            FastCGIRequest(params: ["REQUEST_METHOD": method, "DOCUMENT_URI": path])
        }
        XCTAssertEqual(router.route(request("GET", "/count")).status, 200)
        XCTAssertEqual(router.route(request("GET", "/count/")).status, 404)
        XCTAssertEqual(router.route(request("GET", "/nope")).status, 404)
        let refused = router.route(request("DELETE", "/count"))
        XCTAssertEqual(refused.status, 405)
        XCTAssertEqual(refused.header("Allow"), "GET, HEAD")
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
    }
}
