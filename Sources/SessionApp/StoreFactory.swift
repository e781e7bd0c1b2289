import RedisClient
import SessionCore
import SessionCrypto
import SessionRedis

/// The one place that turns a configuration into the production store and the cookie codec,
/// for the server's workers and for the operators' commands alike.
extension AppConfiguration {
    /// Key names and what is sealed or hashed at rest, shared by every worker's store (make it
    /// once). Throws when libcrypto cannot use the encryption keys.
    func makeLayout() throws(ConfigurationError) -> RedisSessionLayout {
        var sealer: AESGCMValueSealer?
        if !encryptionKeys.isEmpty {
            guard let ring = AESGCMValueSealer(keys: encryptionKeys) else {
                throw ConfigurationError("--encryption-keys-file: the keys cannot be used (libcrypto refused them)")
            }
            sealer = ring
        }
        return RedisSessionLayout(keyPrefix: keyPrefix, userKeyPrefix: userKeyPrefix, sealer: sealer,
                                  idHasher: storeIDHashes ? SHA256SessionIDHasher() : nil)
    }

    /// A Redis store with its own client and connections (call once per thread).
    func makeStore(layout: RedisSessionLayout) -> RedisSessionStore {
        RedisSessionStore(client: RedisClient(configuration: redisConfiguration), layout: layout,
                          indexLifetimeSeconds: absoluteTimeoutSeconds + rotationGraceSeconds + 60,
                          waitReplicas: redisWaitReplicas, waitTimeoutMilliseconds: redisWaitTimeoutMilliseconds)
    }

    /// How the production store waits for a rotated copy.
    var rotationRetry: RotationRetry { .redis }

    /// The cookie codec, signing when signing keys are configured.
    func makeCookieCodec() -> SessionCookieCodec {
        SessionCookieCodec(configuration: session, signer: HMACSessionIDSigner(keys: cookieSigningKeys.map { Array($0.utf8) }))
    }

    /// A session manager over the production store (the operators' commands).
    func makeManager() throws(ConfigurationError) -> SessionManager<RedisSessionStore> {
        SessionManager(store: makeStore(layout: try makeLayout()), timeouts: timeouts, limits: limits,
                       rotationGraceSeconds: rotationGraceSeconds, rotationRetry: rotationRetry)
    }

    /// What is protected at rest, for the start-up log (key ids only, never keys).
    var atRestSummary: String {
        var parts: [String] = []
        if let first = encryptionKeys.first {
            let others = encryptionKeys.dropFirst().map(\.id)
            parts.append("values sealed with AES-256-GCM under key \(first.id)" + (others.isEmpty ? "" : " (also opening: \(others.joined(separator: ", ")))"))
        } else {
            parts.append("values stored plain")
        }
        parts.append(storeIDHashes ? "ids hashed (SHA-256)" : "ids stored plain")
        return parts.joined(separator: ", ")
    }
}
