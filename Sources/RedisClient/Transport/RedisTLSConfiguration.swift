/// How to speak TLS to Redis servers (`rediss://…`): whom to trust, how to prove who we are,
/// and which name to check. Verification is on by default; turning it off is explicit.
public struct RedisTLSConfiguration: Equatable, Sendable {
    /// PEM file of the certificate authorities to trust; `nil` uses the system's trust store.
    public var caFile: String?
    /// PEM client certificate for mutual TLS (with `keyFile`).
    public var certificateFile: String?
    /// PEM private key of `certificateFile`.
    public var keyFile: String?
    /// The name the server certificate must carry (and the SNI sent); `nil` checks each node's
    /// own host (a DNS name or an IP address). Cluster and Sentinel nodes learnt at run time are
    /// checked against this name when it is set.
    public var serverName: String?
    /// Skips certificate and name verification. For tests only; logged as a warning at start.
    public var insecure: Bool

    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, serverName: String? = nil,
                insecure: Bool = false) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
        self.insecure = insecure
    }
}
