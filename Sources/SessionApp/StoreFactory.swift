import RedisClient
import SessionCore
import SessionCrypto
import SessionRedis

/// The one place that turns a configuration into the production store and the cookie codec,
/// for the server's workers and for the operators' commands alike.
extension AppConfiguration {
    /// A Redis store with its own client and connections (call once per thread).
    func makeStore() -> RedisSessionStore {
        RedisSessionStore(client: RedisClient(configuration: redisConfiguration), keyPrefix: keyPrefix, userKeyPrefix: userKeyPrefix,
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
    func makeManager() -> SessionManager<RedisSessionStore> {
        SessionManager(store: makeStore(), timeouts: timeouts, limits: limits, rotationGraceSeconds: rotationGraceSeconds,
                       rotationRetry: rotationRetry)
    }
}
