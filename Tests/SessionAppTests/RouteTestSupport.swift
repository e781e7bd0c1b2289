import Foundation
import Logging
import XCTest
import FastCGIServer
import SessionCore
@testable import SessionApp

/// Every route in process, over `InMemorySessionStore`: no nginx, no Redis. Builds the
/// configuration from real flags, the users file from real hashes, and logs to a file the
/// tests can read.
final class RouteHarness {
    static let password = "correct horse battery staple"
    static let usersText: String = {
        ["ada", "bob"].map { "\($0):" + (PasswordHash.make(Array(password.utf8), iterations: 10_000)?.encoded ?? "") }
            .joined(separator: "\n")
    }()
    static let adminToken = "a8Kq2ZxW7mVt4NpR9sLc3HyB6dFg1JuE0oTi"
    static let host = "app.example"

    let store = InMemorySessionStore()
    let configuration: AppConfiguration
    let logFile: URL
    let metrics = AppMetrics()
    let settings: SettingsCell
    let responder: SessionResponder<InMemorySessionStore>

    init(_ arguments: [String] = []) throws {
        guard case .serve(let configuration) = try AppConfiguration.parse(arguments: ["--admin-token", Self.adminToken] + arguments,
                                                                          environment: [:]) else {
            throw ConfigurationError("expected a configuration")
        }
        self.configuration = configuration
        logFile = FileManager.default.temporaryDirectory.appendingPathComponent("routes-\(UUID().uuidString).log")
        let sink = try LogSink(path: logFile.path)
        let log = Logger(label: "routes") { _ in LogfmtLogHandler(sink: sink, level: .debug) }
        settings = SettingsCell(ReloadableSettings(users: UsersFile(text: Self.usersText), cookies: configuration.makeCookieCodec(),
                                                   adminToken: configuration.adminToken,
                                                   trustedLoginKeys: configuration.trustedLoginKeys.map { Array($0.utf8) }))
        let metrics = self.metrics
        responder = SessionResponder(configuration: configuration, store: store, settings: settings, log: log, metrics: metrics,
                                     hasher: LogSessionHasher(key: nil), rotationRetry: .none,
                                     passwordChecks: PasswordCheckGate(permits: configuration.loginConcurrency,
                                                                       waitMilliseconds: configuration.loginWaitMilliseconds),
                                     exposition: { metrics.exposition() })
    }

    deinit { try? FileManager.default.removeItem(at: logFile) }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// One request; `cookie` is the whole Cookie header.
    func request(_ method: String, _ path: String, cookie: String? = nil, headers: [String: String] = [:],
                 body: String? = nil, contentType: String = "application/json") -> FastCGIResponse {
        responder.respond(to: makeRequest(method, path, cookie: cookie, headers: headers, body: body, contentType: contentType))
    }

    /// The FastCGI request `request` sends.
    func makeRequest(_ method: String, _ path: String, cookie: String? = nil, headers: [String: String] = [:],
                     body: String? = nil, contentType: String = "application/json") -> FastCGIRequest {
        let parts = path.split(separator: "?", maxSplits: 1)
        var params: [(String, String)] = [
            ("REQUEST_METHOD", method), ("DOCUMENT_URI", String(parts[0])), ("REQUEST_URI", path),
            ("QUERY_STRING", parts.count > 1 ? String(parts[1]) : ""), ("HTTP_HOST", Self.host),
        ]
        if let cookie { params.append(("HTTP_COOKIE", cookie)) }
        if let body {
            params.append(("CONTENT_TYPE", contentType))
            params.append(("CONTENT_LENGTH", String(body.utf8.count)))
        }
        for (name, value) in headers { params.append((name, value)) }
        var fastCGI = FastCGIParams()
        for (name, value) in params { fastCGI.append(name: Array(name.utf8), value: Array(value.utf8)) }
        return FastCGIRequest(params: fastCGI, body: Array((body ?? "").utf8))
    }

    /// A same-origin POST with a JSON body.
    func post(_ path: String, cookie: String?, json: String = "{}", csrf: String? = nil) -> FastCGIResponse {
        var headers = ["HTTP_ORIGIN": "http://\(Self.host)"]
        if let csrf { headers["HTTP_X_CSRF_TOKEN"] = csrf }
        return request("POST", path, cookie: cookie, headers: headers, body: json)
    }

    /// Logs `user` in with the right password, presenting `cookie`. Returns the new cookie and
    /// the CSRF token.
    func login(_ user: String = "ada", cookie: String? = nil) throws -> (cookie: String, csrf: String, response: FastCGIResponse) {
        let response = post("/login", cookie: cookie, json: #"{"user":"\#(user)","password":"\#(Self.password)"}"#)
        XCTAssertEqual(response.status, 200, String(decoding: response.body, as: UTF8.self))
        let cookie = try XCTUnwrap(response.sessionCookie)
        let csrf = try XCTUnwrap(response.json["csrfToken"] as? String)
        return (cookie, csrf, response)
    }
}

extension FastCGIResponse {
    /// `sid=<value>` from this response's Set-Cookie, if it sets a non-empty one.
    var sessionCookie: String? {
        setCookies.first { $0.hasPrefix("sid=") && !$0.hasPrefix("sid=;") }.map { String($0.prefix { $0 != ";" }) }
    }

    var setCookies: [String] { headers.filter { $0.name == "Set-Cookie" }.map(\.value) }

    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]) ?? [:] }

    var text: String { String(decoding: body, as: UTF8.self) }
}
