import RedisClient

/// How a test server speaks TLS: TLS only (`--port 0`), with the material's server
/// certificate, and whether clients must present a certificate.
public struct RedisServerTLS: Sendable {
    public enum ClientCertificates: String, Sendable {
        /// Clients may present one (checked when they do).
        case optional
        /// Clients must present one signed by the test CA.
        case yes
    }

    public let material: TLSMaterial
    public var clientCertificates: ClientCertificates

    public init(material: TLSMaterial, clientCertificates: ClientCertificates = .optional) {
        self.material = material
        self.clientCertificates = clientCertificates
    }

    /// redis-server arguments: TLS on `port` and nothing else, replication (and, for cluster
    /// nodes, the cluster bus) over TLS too.
    public func serverArguments(port: Int, cluster: Bool = false) -> [String] {
        var arguments = ["--port", "0", "--tls-port", String(port),
                         "--tls-cert-file", material.serverCertificateFile, "--tls-key-file", material.serverKeyFile,
                         "--tls-ca-cert-file", material.caFile, "--tls-auth-clients", clientCertificates.rawValue,
                         "--tls-replication", "yes"]
        if cluster { arguments += ["--tls-cluster", "yes"] }
        return arguments
    }

    /// The same as configuration-file lines (for redis-sentinel).
    public func configurationLines(port: Int) -> [String] {
        ["port 0", "tls-port \(port)", "tls-cert-file \(material.serverCertificateFile)", "tls-key-file \(material.serverKeyFile)",
         "tls-ca-cert-file \(material.caFile)", "tls-auth-clients \(clientCertificates.rawValue)", "tls-replication yes"]
    }

    /// What a well-configured client uses: the test CA, and the client certificate when the
    /// servers demand one.
    public var clientConfiguration: RedisTLSConfiguration {
        material.clientConfiguration(clientCertificate: clientCertificates == .yes)
    }

    /// `redis-cli` arguments for the same.
    public var redisCLIArguments: [String] {
        ["--tls", "--cacert", material.caFile, "--cert", material.clientCertificateFile, "--key", material.clientKeyFile]
    }
}
