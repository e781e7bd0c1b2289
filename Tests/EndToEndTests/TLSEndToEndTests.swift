import Foundation
import XCTest
import TestSupport

/// nginx serving HTTPS as nginx/render sets it up with TLS_CERT/TLS_KEY (what
/// `HTTPS=1 deploy/local up` uses), with a self-signed certificate made for the test.
final class TLSEndToEndTests: XCTestCase {
    static let hsts = "max-age=31536000"

    private func loggedInCookie(_ stack: SessionStack) throws -> String {
        let body = Array("{\"user\":\"ada\",\"password\":\"\(LifecycleEndToEndTests.password)\"}".utf8)
        let response = try Curl.request(stack.baseURL + "/login", method: "POST",
                                        headers: [("Content-Type", "application/json")], body: body)
        XCTAssertEqual(response.status, 200, response.text)
        return "sid=" + (try XCTUnwrap(response.setCookieValue()))
    }

    /// Review finding: no Strict-Transport-Security over HTTPS. Every kind of answer carries it:
    /// FastCGI responses, redirects to login, the protected static folder (whose own add_header
    /// lines would otherwise replace the server's), the second upstream, nginx's own errors.
    func testEveryHTTPSResponseCarriesHSTS() throws {
        let stack = try SessionStack(instanceCount: 2, threads: 8,
                                     extraArguments: ["--users-file", LifecycleEndToEndTests.usersFile().path], https: true)
        defer { stack.stop() }
        let cookie = try loggedInCookie(stack)
        let answers: [(String, String?, Int)] = [
            ("/", nil, 200), ("/count", nil, 200), ("/healthz", nil, 200), ("/private/", nil, 302),
            ("/private/", cookie, 200), ("/private/missing.html", cookie, 404), ("/app/", cookie, 200),
            ("/admin/revoke-user", nil, 404), ("/no-such-route", nil, 404),
        ]
        for (path, cookie, status) in answers {
            let response = try stack.get(path, cookie: cookie)
            XCTAssertEqual(response.status, status, "\(path) \(cookie == nil ? "anonymous" : "logged in")")
            XCTAssertEqual(response.headers("Strict-Transport-Security"), [Self.hsts], "\(path) \(response.status)")
        }
        // The protected page still has its own security headers next to HSTS.
        let page = try stack.get("/private/", cookie: cookie)
        XCTAssertEqual(page.header("X-Content-Type-Options"), "nosniff")
        XCTAssertEqual(page.header("Cache-Control"), "no-store")
    }

    func testPlainHTTPSendsNoHSTS() throws {
        let stack = try SessionStack(instanceCount: 1, threads: 4)
        defer { stack.stop() }
        for path in ["/", "/count", "/private/"] {
            XCTAssertNil(try stack.get(path).header("Strict-Transport-Security"), path)
        }
    }

    /// Review finding: TLS 1.2 accepted suites without forward secrecy. Only ECDHE key exchange
    /// with AEAD ciphers is accepted in TLS 1.2; TLS 1.3 works; older protocols do not.
    func testOnlyForwardSecretAEADSuitesAndModernProtocols() throws {
        let stack = try SessionStack(instanceCount: 1, threads: 4, https: true)
        defer { stack.stop() }
        let url = stack.baseURL + "/healthz"
        func handshake(_ arguments: [String]) throws -> Bool {
            try Curl.run(["-sk", "-o", "/dev/null", "-m", "10"] + arguments + [url]).status == 0
        }
        for suite in ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"] {
            XCTAssertTrue(try handshake(["--tlsv1.2", "--tls-max", "1.2", "--ciphers", suite]), suite)
        }
        for suite in ["AES128-GCM-SHA256", "AES256-GCM-SHA384",          // RSA key exchange: no forward secrecy
                      "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384",  // CBC
                      "DHE-RSA-AES128-GCM-SHA256"] {                      // finite-field DH
            XCTAssertFalse(try handshake(["--tlsv1.2", "--tls-max", "1.2", "--ciphers", suite]), "\(suite) must be refused")
        }
        XCTAssertTrue(try handshake(["--tlsv1.3"]), "TLS 1.3")
        // The server's side of an old protocol: openssl offers TLS 1.1 at its lowest security
        // level, and nginx must still refuse it.
        XCTAssertFalse(try openssl(port: stack.nginxPort, ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]).contains("Cipher is ECDHE"),
                       "TLS 1.1 must be refused")
    }

    /// Session tickets are off (their key would decrypt every resumed session since startup);
    /// resumption uses the server-side cache.
    func testNoSessionTicketsButResumptionWorks() throws {
        let stack = try SessionStack(instanceCount: 1, threads: 4, https: true)
        defer { stack.stop() }
        let session = stack.directory.appendingPathComponent("tls-session.pem")
        let first = try openssl(port: stack.nginxPort, ["-tls1_2", "-sess_out", session.path])
        XCTAssertTrue(first.contains("Cipher is ECDHE"), first)
        XCTAssertFalse(first.contains("TLS session ticket:"), "the server issued a session ticket")
        let second = try openssl(port: stack.nginxPort, ["-tls1_2", "-sess_in", session.path])
        XCTAssertTrue(second.contains("Reused, TLSv1.2"), "resumption from the session cache: \(second)")
    }

    /// `openssl s_client` against 127.0.0.1:`port`; its standard output and error.
    private func openssl(port: Int, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.tool("openssl"))
        process.arguments = ["s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }
}
