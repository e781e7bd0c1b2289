import Foundation
import XCTest
import TestSupport

/// Instances on Unix sockets behind nginx: only nginx's workers may connect, the failure
/// policy works as on TCP, and nginx/render takes `unix:` addresses (and nothing odd).
final class UnixSocketEndToEndTests: XCTestCase {
    private func socketPath(_ address: String) -> String { String(address.dropFirst("unix:".count)) }

    func testInstancesOnUnixSocketsServeThroughNginx() throws {
        let stack = try SessionStack(instanceCount: 2, threads: 8, transport: .unixSocket)
        defer { stack.stop() }
        XCTAssertTrue(stack.instanceAddresses.allSatisfy { $0.hasPrefix("unix:/") })
        let id = try XCTUnwrap(stack.get("/count?n=1").setCookieValue())
        for n in 2...6 { XCTAssertEqual(try stack.get("/count?n=\(n)", cookie: "sid=\(id)").count, n) }
        // Round robin over both sockets, as the access log tells.
        Thread.sleep(forTimeInterval: 0.2)
        let used = Set(AccessLog.entries(stack.accessLog).filter { $0.target.hasPrefix("/count?n=") }.flatMap(\.upstreams))
        XCTAssertEqual(used, Set(stack.instanceAddresses))
    }

    /// Only nginx's workers (group www-data when nginx starts as root) can connect; any other
    /// local user is refused by the socket's permissions.
    func testOnlyNginxsWorkersMayConnect() throws {
        try XCTSkipUnless(getuid() == 0, "needs root to start nginx with workers as www-data and to act as other users")
        let stack = try SessionStack(instanceCount: 1, threads: 4, transport: .unixSocket)
        defer { stack.stop() }
        let path = socketPath(stack.instanceAddresses[0])
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o660)
        XCTAssertEqual(attributes[.groupOwnerAccountName] as? String, SessionStack.nginxWorkerGroup)
        let nginxUser = try fastCGIRequest(as: SessionStack.nginxWorkerGroup, socket: path)
        XCTAssertEqual(nginxUser.status, 0, "nginx's user must be able to ask the instance: \(nginxUser.output)")
        XCTAssertTrue(nginxUser.output.contains("{\"status\":\"alive\"}"), nginxUser.output)
        // cgi-fcgi exits with the errno of its failed connect.
        let stranger = try fastCGIRequest(as: "nobody", socket: path)
        XCTAssertEqual(stranger.status, EACCES, stranger.output)
        XCTAssertFalse(stranger.output.contains("alive"), stranger.output)
    }

    /// The failure policy does not depend on the transport: a hung instance on a socket is
    /// noticed by the read timeout and the request is served by the other one.
    func testHungSocketInstanceIsSkipped() throws {
        let stack = try SessionStack(instanceCount: 2, threads: 8, transport: .unixSocket)
        defer { stack.stop() }
        stack.pauseInstance(address: stack.instanceAddresses[0])
        defer { stack.resumeInstance(address: stack.instanceAddresses[0]) }
        for n in 0..<2 {
            let started = Date()
            let response = try stack.get("/healthz?n=\(n)")
            XCTAssertEqual(response.status, 200, "request \(n)")
            XCTAssertLessThan(Date().timeIntervalSince(started), UpstreamPolicyEndToEndTests.readTimeout + 1.5)
        }
        Thread.sleep(forTimeInterval: 0.2)
        let retried = AccessLog.entries(stack.accessLog).filter { $0.upstreamStatuses == ["504", "200"] }
        XCTAssertEqual(retried.first?.upstreams, stack.instanceAddresses, "one request should have met the hung instance first")
    }

    func testRenderTakesUnixSocketsAndRefusesAnythingElse() throws {
        let folder = try Paths.temporaryDirectory("render")
        defer { try? FileManager.default.removeItem(at: folder) }
        let good = try render(folder, addresses: "unix:/run/session-fcgi/a/fcgi.sock 127.0.0.1:9001 [::1]:9002")
        XCTAssertEqual(good.status, 0)
        XCTAssertTrue(good.output.contains("server unix:/run/session-fcgi/a/fcgi.sock max_fails=3 fail_timeout=2s;"), good.output)
        XCTAssertTrue(good.output.contains("server [::1]:9002 max_fails=3"))
        for bad in ["unix:relative.sock", "unix:/a b", "127.0.0.1:9001;include /etc/passwd", "unix:/x.sock{", "9001", "\"127.0.0.1:1\""] {
            let result = try render(folder, addresses: bad)
            XCTAssertNotEqual(result.status, 0, "render took \(bad)")
            XCTAssertFalse(result.output.contains("upstream session_fcgi"), bad)
        }
    }

    /// `cgi-fcgi` run as `user` against the socket: its exit status and output.
    private func fastCGIRequest(as user: String, socket: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.tool("runuser"))
        process.arguments = ["-u", user, "--", Paths.tool("cgi-fcgi"), "-bind", "-connect", socket]
        process.environment = ["PATH": "/usr/bin:/bin", "REQUEST_METHOD": "GET", "DOCUMENT_URI": "/livez",
                               "REQUEST_URI": "/livez", "SERVER_PROTOCOL": "HTTP/1.1"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    private func render(_ folder: URL, addresses: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = Paths.repositoryRoot.appendingPathComponent("nginx/render")
        process.environment = ["PATH": "/usr/sbin:/usr/bin:/bin", "STATE_DIR": folder.path,
                               "LISTEN": "127.0.0.1:8080", "FCGI_ADDRESSES": addresses]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}
