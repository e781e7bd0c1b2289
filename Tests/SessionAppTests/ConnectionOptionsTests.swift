import XCTest
import FastCGIServer
@testable import SessionApp

/// The FastCGI connection options: flags, environment variables, defaults and refusals.
final class ConnectionOptionsTests: XCTestCase {
    private func server(_ arguments: [String], _ environment: [String: String] = [:]) throws -> FastCGIServerConfiguration {
        guard case .serve(let configuration) = try AppConfiguration.parse(arguments: arguments, environment: environment) else {
            throw ConfigurationError("expected a configuration")
        }
        return configuration.server
    }

    func testDefaults() throws {
        let server = try server([])
        XCTAssertEqual(server.firstRequestTimeoutMilliseconds, 5000)
        XCTAssertEqual(server.idleConnectionTimeoutSeconds, 75, "above nginx's upstream keepalive_timeout of 60 s")
        XCTAssertEqual(server.ioTimeoutMilliseconds, 10_000)
        XCTAssertNil(server.maxConnections)
        XCTAssertNil(server.allowedPeers, "nil: loopback only on TCP")
    }

    func testFlagsAndEnvironment() throws {
        let server = try server(
            ["--first-request-timeout-ms", "750", "--max-connections", "300", "--allowed-peers", "10.0.0.5, 10.0.1.0/24"],
            ["SESSION_FCGI_IDLE_CONNECTION_TIMEOUT": "90", "SESSION_FCGI_IO_TIMEOUT_MS": "2500",
             "FCGI_WEB_SERVER_ADDRS": "127.0.0.1", "SESSION_FCGI_MAX_CONNECTIONS": "5"])
        XCTAssertEqual(server.firstRequestTimeoutMilliseconds, 750)
        XCTAssertEqual(server.idleConnectionTimeoutSeconds, 90)
        XCTAssertEqual(server.ioTimeoutMilliseconds, 2500)
        XCTAssertEqual(server.maxConnections, 300, "the flag wins over the environment")
        XCTAssertEqual(server.allowedPeers?.description, "10.0.0.5,10.0.1.0/24")
    }

    /// libfcgi's own variable names the peers when no flag does.
    func testLibfcgiEnvironmentVariableNamesThePeers() throws {
        let server = try server([], ["FCGI_WEB_SERVER_ADDRS": "192.0.2.10,2001:db8::10"])
        XCTAssertEqual(server.allowedPeers?.description, "192.0.2.10,2001:db8::10")
    }

    func testInvalidValuesAreRefusedWithTheirFlag() {
        for arguments in [["--first-request-timeout-ms", "0"], ["--first-request-timeout-ms", "soon"],
                          ["--idle-connection-timeout", "0"], ["--idle-connection-timeout", "100000"],
                          ["--max-connections", "0"], ["--io-timeout-ms", "-1"],
                          ["--allowed-peers", "nginx.internal"], ["--allowed-peers", "10.0.0.1,"], ["--allowed-peers", ""]] {
            XCTAssertThrowsError(try server(arguments), "\(arguments)") { error in
                let message = (error as? ConfigurationError)?.message ?? ""
                XCTAssertTrue(message.contains(arguments[0]), "\(message) should name \(arguments[0])")
            }
        }
    }

    func testDefaultConnectionLimitFollowsTheOpenFileLimit() {
        var server = FastCGIServerConfiguration(threads: 8)
        XCTAssertEqual(server.effectiveMaxConnections(openFileLimit: 1024), 1024 - 64 - 16)
        XCTAssertEqual(server.effectiveMaxConnections(openFileLimit: 1_048_576), 4096)
        XCTAssertEqual(server.effectiveMaxConnections(openFileLimit: 50), 1, "never zero")
        server.maxConnections = 20_000
        XCTAssertEqual(server.effectiveMaxConnections(openFileLimit: 1024), 20_000, "an explicit limit is taken as given")
    }

    func testHelpNamesEveryConnectionOption() {
        let help = AppConfiguration.helpText
        for text in ["--first-request-timeout-ms", "--idle-connection-timeout", "--max-connections", "--io-timeout-ms",
                     "--allowed-peers", "FCGI_WEB_SERVER_ADDRS", "not applied to Unix sockets"] {
            XCTAssertTrue(help.contains(text), text)
        }
    }
}
