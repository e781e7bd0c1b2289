import Foundation

/// nginx rendered from `nginx/session-store.conf.template` in front of instances the test
/// started itself, with extra server-level directives (e.g. `fastcgi_bind 127.0.0.2;`).
/// Stopped by pid.
public final class NginxFrontend {
    public let port: Int
    private let process: ManagedProcess

    public init(fastCGIAddresses: [String], serverDirectives: String = "", directory: URL) throws {
        port = FreePort.next()
        process = try NginxTemplate.start(
            in: directory.appendingPathComponent("nginx-\(port)"),
            settings: ["LISTEN": "127.0.0.1:\(port)", "FCGI_ADDRESSES": fastCGIAddresses.joined(separator: " "), "NGINX_WORKERS": "2",
                       "APP_UPSTREAM": "127.0.0.1:\(FreePort.next())", "EXTRA_LOCATIONS": serverDirectives],
            port: port)
    }

    public func get(_ path: String, cookie: String? = nil) throws -> HTTPResponse {
        try HTTPClient.get(port: port, path: path, cookie: cookie)
    }

    public func stop() { process.stop(signal: SIGQUIT) }

    deinit { stop() }
}
