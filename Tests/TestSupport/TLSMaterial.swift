import Foundation
import RedisClient

/// Certificates for TLS tests, made with the `openssl` command line into a temporary folder:
/// a test CA, a server certificate it signs (SAN `IP:127.0.0.1` and `DNS:localhost`, usable as a
/// client certificate too, as Redis uses it for the cluster bus and replication), a client
/// certificate it signs, and a second, unrelated CA whose trust must not be enough.
/// Keys are P-256 (fast to make); everything is valid for two days.
public final class TLSMaterial: Sendable {
    public let directory: URL
    public var caFile: String { path("ca.crt") }
    public var serverCertificateFile: String { path("server.crt") }
    public var serverKeyFile: String { path("server.key") }
    public var clientCertificateFile: String { path("client.crt") }
    public var clientKeyFile: String { path("client.key") }
    /// A CA that signed nothing the servers use.
    public var otherCAFile: String { path("other-ca.crt") }

    public init() throws {
        directory = try Paths.temporaryDirectory("tls")
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path("ca.key"),
                     "-out", caFile, "-days", "2", "-subj", "/CN=session-store test CA"])
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path("other-ca.key"),
                     "-out", otherCAFile, "-days", "2", "-subj", "/CN=unrelated test CA"])
        try issue(name: "server", subject: "/CN=localhost",
                  extensions: "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
        try issue(name: "client", subject: "/CN=session-fcgi",
                  extensions: "extendedKeyUsage=clientAuth\n")
    }

    /// Client settings for the servers these files serve: trusting the test CA (or the
    /// unrelated one), with the client certificate for mutual TLS when asked.
    public func clientConfiguration(clientCertificate: Bool = false, trustOtherCA: Bool = false, serverName: String? = nil,
                                    insecure: Bool = false) -> RedisTLSConfiguration {
        RedisTLSConfiguration(caFile: trustOtherCA ? otherCAFile : caFile,
                              certificateFile: clientCertificate ? clientCertificateFile : nil,
                              keyFile: clientCertificate ? clientKeyFile : nil,
                              serverName: serverName, insecure: insecure)
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func issue(name: String, subject: String, extensions: String) throws {
        try extensions.write(toFile: path("\(name).ext"), atomically: true, encoding: .utf8)
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path("\(name).key"),
                     "-out", path("\(name).csr"), "-subj", subject])
        try openssl(["x509", "-req", "-in", path("\(name).csr"), "-CA", caFile, "-CAkey", path("ca.key"), "-CAcreateserial",
                     "-out", path("\(name).crt"), "-days", "2", "-extfile", path("\(name).ext")])
    }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.tool("openssl"))
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestSupportError.didNotStart("openssl \(arguments.first ?? ""): \(String(decoding: message, as: UTF8.self))")
        }
    }

    deinit { try? FileManager.default.removeItem(at: directory) }
}
