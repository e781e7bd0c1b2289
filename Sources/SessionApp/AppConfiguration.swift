import FastCGIServer
import Logging
import RedisClient
import SessionCore
import SessionCrypto

/// Everything `session-fcgi` needs to run, parsed once from flags and environment.
public struct AppConfiguration: Equatable, Sendable {
    public var server = FastCGIServerConfiguration()
    /// The Redis deployment as `--redis-url` gives it; connect with `redisConfiguration`, which
    /// adds the settings given apart (password file, TLS files, timeouts).
    public var redis = RedisConfiguration()
    /// The Redis password from `--redis-password-file`; it wins over one in the URL.
    public var redisPassword: String?
    /// That file, read again on SIGHUP, and the password new connections use (shared by every
    /// worker's client).
    public var redisPasswordFile: String?
    public var redisPasswordSource: RedisPasswordSource?
    /// Whether `--redis-url`'s credentials are one word without a colon (read as a password).
    public var redisURLCredentialsAreOneWord = false
    /// The Sentinels' own password (`--redis-sentinel-password-file`) and user.
    public var redisSentinelPassword: String?
    public var redisSentinelUsername: String?
    /// Connect and per-command bounds for every Redis node, in milliseconds.
    public var redisConnectTimeoutMilliseconds = 200
    public var redisCommandTimeoutMilliseconds = 500
    /// TLS files and names (used with a `rediss…` URL).
    public var redisTLS = RedisTLSConfiguration()
    /// Whether any `--redis-tls-…` option was given (they need a `rediss…` URL).
    public var redisTLSOptionsGiven = false
    /// Replicas a security write waits for: `nil` is 1 once Redis has shown a replica; 0 is off.
    public var redisWaitReplicas: Int?
    /// Bound on that wait, as given; `nil` is 200 ms or half the command timeout if smaller.
    public var redisWaitTimeoutGiven: Int?

    /// Bound on the replica wait of security writes.
    public var redisWaitTimeoutMilliseconds: Int {
        redisWaitTimeoutGiven ?? min(200, max(1, redisCommandTimeoutMilliseconds / 2))
    }
    /// Prefix of every session key in Redis (`sid_`).
    public var keyPrefix = "sid_"
    public var session = SessionConfiguration()
    /// `Retry-After` seconds sent with 503 answers.
    public var retryAfterSeconds = 1
    /// Largest `Cookie` header accepted, in bytes.
    public var maxCookieHeaderBytes = 8192
    /// Log file; `nil` logs to standard error (which spawn-fcgi points at /dev/null).
    public var logFile: String?
    public var logLevel: Logger.Level = .info
    /// Key of the hashes that stand for session ids in logs (`--log-key-file`).
    public var logHashKey: String?
    /// Idle timeout in seconds: the Redis TTL, renewed by requests at most every touch interval (1800).
    public var idleTimeoutSeconds = 1800
    /// Absolute session lifetime in seconds (12 h); also the cookie's Max-Age.
    public var absoluteTimeoutSeconds = 12 * 3600
    /// `--touch-interval` as given; `nil` is `SessionTimeouts.defaultTouchInterval` of the idle
    /// timeout (60 s for 30 minutes).
    public var touchIntervalGiven: Int?
    /// How long a rotated-away id keeps working (10 s; 0 allowed).
    public var rotationGraceSeconds = 10
    public var limits = SessionLimits()
    /// Prefix of the per-user index and generation keys (`sidu_`).
    public var userKeyPrefix = "sidu_"
    /// The users file (`user:pbkdf2-sha256$…` lines) for `POST /login`; none disables login.
    public var usersFile: String?
    /// Password checks an instance runs at once (`PasswordCheckGate`).
    public var loginConcurrency = 1
    /// How long a login waits for a password check to be free before a 503.
    public var loginWaitMilliseconds = 1000
    /// Failed logins of one user name allowed within a window before its logins get 429
    /// without a password check; `nil`: no limit.
    public var loginFailureLimit: LoginFailureLimit? = LoginFailureLimit(count: 10, windowSeconds: 900)
    /// Bearer token of the admin routes; none disables them.
    public var adminToken: String?
    /// Where the admin token was read from, to read it again on SIGHUP.
    public var adminTokenFile: String?
    /// Cookie signing keys (the first signs, all verify); none sends plain ids.
    public var cookieSigningKeys: [String] = []
    /// Where the signing keys were read from, to read them again on SIGHUP.
    public var cookieSigningKeysFile: String?
    /// Keys that verify trusted-login assertions (`TrustedLoginAssertion`); none disables
    /// `GET /trusted-login`.
    public var trustedLoginKeys: [String] = []
    /// Where the trusted-login keys were read from, to read them again on SIGHUP.
    public var trustedLoginKeysFile: String?
    /// Whether `GET /auth` (nginx auth_request) renews the session's idle timeout, as any
    /// request does: on by default, or a user active only in the apps behind the gateway is
    /// logged out one idle timeout after logging in.
    public var authSlides = true
    /// Origins allowed to make state-changing requests besides the request's own.
    public var allowedOrigins: [String] = []
    /// Keys that seal session values at rest (the first seals, all open); none stores them
    /// plain. From `--encryption-keys-file` only.
    public var encryptionKeys: [SealingKey] = []
    /// Where they came from: read at start only (SIGHUP says so when the file changed).
    public var encryptionKeysFile: String?
    /// Whether Redis names sessions by SHA-256 of their ids instead of the ids.
    public var storeIDHashes = false

    /// Problems worth a log line at start that do not stop the program (a world-readable
    /// secret file, say). Never holds a secret.
    public var warnings: [String] = []

    /// Where and how to connect to Redis: the URL with every setting given apart applied.
    public var redisConfiguration: RedisConfiguration {
        var configuration = redis
        if let redisPassword { configuration.password = redisPassword }
        configuration.passwordSource = redisPasswordSource
        configuration.sentinelPassword = redisSentinelPassword
        configuration.sentinelUsername = redisSentinelUsername
        if configuration.tls != nil { configuration.tls = redisTLS }
        configuration.connectTimeoutMilliseconds = redisConnectTimeoutMilliseconds
        configuration.commandTimeoutMilliseconds = redisCommandTimeoutMilliseconds
        return configuration
    }

    /// Idle and absolute timeouts and the touch interval together.
    public var timeouts: SessionTimeouts {
        SessionTimeouts(idleSeconds: idleTimeoutSeconds, absoluteSeconds: absoluteTimeoutSeconds, touchIntervalSeconds: touchIntervalGiven)
    }

    public init() {}
}

/// A configuration value that was given but cannot be used.
public struct ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// `--login-failure-limit`: at most `count` failed logins of one user name within
/// `windowSeconds` of the first.
public struct LoginFailureLimit: Equatable, Sendable {
    /// Failed logins allowed within a window; the next ones are refused until it ends.
    public var count: Int
    /// How long a window lasts from its first failed login.
    public var windowSeconds: Int

    public init(count: Int, windowSeconds: Int) {
        self.count = count
        self.windowSeconds = windowSeconds
    }
}
