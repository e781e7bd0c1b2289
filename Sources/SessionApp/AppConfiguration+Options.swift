import Glibc
import Logging
import FastCGIServer
import RedisClient
import SessionCore

/// One command-line option, its environment variable and how it changes the configuration.
struct Option: Sendable {
    let flag: String
    let environment: String
    let valueName: String
    let help: String
    let apply: @Sendable (inout AppConfiguration, String) throws(ConfigurationError) -> Void
}

extension AppConfiguration {
    /// Every option `session-fcgi` understands. Flags win over environment variables.
    static let options: [Option] = [
        Option(flag: "--listen", environment: "SESSION_FCGI_LISTEN", valueName: "ADDRESS",
               help: "HOST:PORT, :PORT, or a Unix socket path to bind (default: the socket spawn-fcgi passes on fd 0)") { config, value throws(ConfigurationError) in
            guard let address = ListenAddress(parsing: value) else { throw ConfigurationError("--listen: cannot parse '\(value)'") }
            config.server.listen = address
        },
        Option(flag: "--threads", environment: "SESSION_FCGI_THREADS", valueName: "N",
               help: "worker threads, each with its own Redis connection; a thread is busy only while it serves requests, so this bounds requests in progress, not connections (default 8)") { config, value throws(ConfigurationError) in
            config.server.threads = try integer(value, flag: "--threads", in: 1...4096)
        },
        Option(flag: "--active-threads", environment: "SESSION_FCGI_ACTIVE_THREADS", valueName: "N",
               help: "of the worker threads, how many take requests at once (at most --threads: a larger value is lowered to it); the others stand by to take over from a thread serving a route that may block (login, the page, the account routes), so those never hold back /count, /me and /auth; fewer active threads take more requests per wake-up (default 2)") { config, value throws(ConfigurationError) in
            config.server.activeThreads = try integer(value, flag: "--active-threads", in: 1...4096)
        },
        Option(flag: "--batch", environment: "SESSION_FCGI_BATCH", valueName: "N",
               help: "most requests a worker takes at once; the Redis calls of a batch's /count, /me and /auth requests go in one round trip; 1 takes one request at a time (default 16)") { config, value throws(ConfigurationError) in
            config.server.batchLimit = try integer(value, flag: "--batch", in: 1...256)
        },
        Option(flag: "--max-connections", environment: "SESSION_FCGI_MAX_CONNECTIONS", valueName: "N",
               help: "most FastCGI connections open at once; at the limit a new one takes the place of the oldest idle one (silent ones first), or is closed if none is idle (default min(open-file limit - 64 - 2 x threads, 4096))") { config, value throws(ConfigurationError) in
            config.server.maxConnections = try integer(value, flag: "--max-connections", in: 1...(1 << 20))
        },
        Option(flag: "--first-request-timeout-ms", environment: "SESSION_FCGI_FIRST_REQUEST_TIMEOUT_MS", valueName: "MS",
               help: "close a new connection that has not sent a whole request within this time (default 5000)") { config, value throws(ConfigurationError) in
            config.server.firstRequestTimeoutMilliseconds = try integer(value, flag: "--first-request-timeout-ms", in: 10...600_000)
        },
        Option(flag: "--idle-connection-timeout", environment: "SESSION_FCGI_IDLE_CONNECTION_TIMEOUT", valueName: "SECONDS",
               help: "close a kept connection without a whole next request for this long; keep it above nginx's upstream keepalive_timeout (default 75)") { config, value throws(ConfigurationError) in
            config.server.idleConnectionTimeoutSeconds = try integer(value, flag: "--idle-connection-timeout", in: 1...86400)
        },
        Option(flag: "--io-timeout-ms", environment: "SESSION_FCGI_IO_TIMEOUT_MS", valueName: "MS",
               help: "bound on each read and write of a request being served; a peer that stops reading its response loses the connection (default 10000)") { config, value throws(ConfigurationError) in
            config.server.ioTimeoutMilliseconds = try integer(value, flag: "--io-timeout-ms", in: 10...600_000)
        },
        Option(flag: "--allowed-peers", environment: "FCGI_WEB_SERVER_ADDRS", valueName: "ADDR[,ADDR...]",
               help: "TCP peers (the nginx hosts) allowed to connect: IPv4/IPv6 addresses or ADDR/PREFIX networks; others are closed at once (default on TCP: loopback only, 127.0.0.0/8 and ::1; not applied to Unix sockets, whose file permissions decide)") { config, value throws(ConfigurationError) in
            do {
                config.server.allowedPeers = try AllowedPeers(parsing: value)
            } catch {
                throw ConfigurationError("--allowed-peers: \(error)")
            }
        },
        Option(flag: "--backlog", environment: "SESSION_FCGI_BACKLOG", valueName: "N",
               help: "listen backlog when binding with --listen (default 1024)") { config, value throws(ConfigurationError) in
            config.server.backlog = try integer(value, flag: "--backlog", in: 1...65535)
        },
        Option(flag: "--max-body-bytes", environment: "SESSION_FCGI_MAX_BODY_BYTES", valueName: "N",
               help: "largest request body accepted, at most 65536 (every request is checked whole before it is read); larger ones get 413 (default 65536)") { config, value throws(ConfigurationError) in
            config.server.maxBodyBytes = try integer(value, flag: "--max-body-bytes", in: 0...FastCGIServerConfiguration.maxBodyBytesLimit)
        },
        Option(flag: "--redis-url", environment: "REDIS_URL", valueName: "URL",
               help: "redis://[[user]:password@]host[:port][/db], unix:///path[?db=N], redis-cluster://host:port[,host:port...], redis-sentinel://host:port[,host:port...]/MASTER[/db]; rediss... for TLS (default redis://127.0.0.1:6379)") { config, value throws(ConfigurationError) in
            do { config.redis = try RedisConfiguration(url: value) } catch { throw ConfigurationError("--redis-url: \(error)") }
            config.redisURLCredentialsAreOneWord = RedisConfiguration.credentialsAreOneWord(inURL: value)
        },
        Option(flag: "--redis-password-file", environment: "SESSION_FCGI_REDIS_PASSWORD_FILE", valueName: "PATH",
               help: "read the Redis password from this file (mode 0600), so it is never on a command line; it replaces a password in --redis-url; read again on SIGHUP for new connections") { config, value throws(ConfigurationError) in
            config.redisPassword = try SecretRules.readSecret(value, what: "--redis-password-file", into: &config)
            config.redisPasswordFile = value
            config.redisPasswordSource = RedisPasswordSource(config.redisPassword)
        },
        Option(flag: "--redis-sentinel-password-file", environment: "SESSION_FCGI_REDIS_SENTINEL_PASSWORD_FILE", valueName: "PATH",
               help: "with redis-sentinel://: the Sentinels' own password (their requirepass), from a file (mode 0600); default: Sentinels are asked without logging in") { config, value throws(ConfigurationError) in
            config.redisSentinelPassword = try SecretRules.readSecret(value, what: "--redis-sentinel-password-file", into: &config)
        },
        Option(flag: "--redis-sentinel-user", environment: "SESSION_FCGI_REDIS_SENTINEL_USER", valueName: "NAME",
               help: "with --redis-sentinel-password-file: the Sentinels' ACL user (default: their default user)") { config, value throws(ConfigurationError) in
            guard !value.isEmpty else { throw ConfigurationError("--redis-sentinel-user: empty name") }
            config.redisSentinelUsername = value
        },
        Option(flag: "--redis-connect-timeout-ms", environment: "SESSION_FCGI_REDIS_CONNECT_TIMEOUT_MS", valueName: "MS",
               help: "bound on connecting to Redis (default 200)") { config, value throws(ConfigurationError) in
            config.redisConnectTimeoutMilliseconds = try integer(value, flag: "--redis-connect-timeout-ms", in: 1...60000)
        },
        Option(flag: "--redis-timeout-ms", environment: "SESSION_FCGI_REDIS_TIMEOUT_MS", valueName: "MS",
               help: "bound on each Redis reply; slower answers become 503 (default 500)") { config, value throws(ConfigurationError) in
            config.redisCommandTimeoutMilliseconds = try integer(value, flag: "--redis-timeout-ms", in: 1...60000)
        },
        Option(flag: "--redis-tls-ca-file", environment: "SESSION_FCGI_REDIS_TLS_CA_FILE", valueName: "PATH",
               help: "with rediss...: PEM certificate authorities to trust (default: the system trust store)") { config, value throws(ConfigurationError) in
            config.redisTLS.caFile = try readablePath(value, flag: "--redis-tls-ca-file")
            config.redisTLSOptionsGiven = true
        },
        Option(flag: "--redis-tls-cert-file", environment: "SESSION_FCGI_REDIS_TLS_CERT_FILE", valueName: "PATH",
               help: "with rediss...: PEM client certificate for mutual TLS (with --redis-tls-key-file)") { config, value throws(ConfigurationError) in
            config.redisTLS.certificateFile = try readablePath(value, flag: "--redis-tls-cert-file")
            config.redisTLSOptionsGiven = true
        },
        Option(flag: "--redis-tls-key-file", environment: "SESSION_FCGI_REDIS_TLS_KEY_FILE", valueName: "PATH",
               help: "with rediss...: PEM private key of the client certificate (mode 0600)") { config, value throws(ConfigurationError) in
            config.redisTLS.keyFile = try readablePath(value, flag: "--redis-tls-key-file")
            if ConfigurationFile.isReadableByOthers(value) {
                config.warnings.append("--redis-tls-key-file: \(value) is readable by every local user; chmod 600 it")
            }
            config.redisTLSOptionsGiven = true
        },
        Option(flag: "--redis-tls-server-name", environment: "SESSION_FCGI_REDIS_TLS_SERVER_NAME", valueName: "NAME",
               help: "with rediss...: the name every Redis certificate must carry (default: each node's own host)") { config, value throws(ConfigurationError) in
            guard !value.isEmpty, value.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else { throw ConfigurationError("--redis-tls-server-name: a host name") }
            config.redisTLS.serverName = value
            config.redisTLSOptionsGiven = true
        },
        Option(flag: "--redis-tls-insecure", environment: "SESSION_FCGI_REDIS_TLS_INSECURE", valueName: "yes|no",
               help: "with rediss...: skip certificate and name checks (tests only; logged as a warning) (default no)") { config, value throws(ConfigurationError) in
            config.redisTLS.insecure = try yesNo(value, flag: "--redis-tls-insecure")
            config.redisTLSOptionsGiven = true
        },
        Option(flag: "--redis-wait-replicas", environment: "SESSION_FCGI_REDIS_WAIT_REPLICAS", valueName: "auto|N",
               help: "replicas that must confirm logout, revoke-all, ending a session and login rotation (WAIT) before the answer; auto: 1 once Redis has shown a replica (one that is down then makes the wait fall short); 0: never wait (default auto)") { config, value throws(ConfigurationError) in
            config.redisWaitReplicas = value.lowercased() == "auto" ? nil : try integer(value, flag: "--redis-wait-replicas", in: 0...16)
        },
        Option(flag: "--redis-wait-timeout-ms", environment: "SESSION_FCGI_REDIS_WAIT_TIMEOUT_MS", valueName: "MS",
               help: "bound on that wait; an unconfirmed write is reported in the answer and the log, not undone (default 200, or half --redis-timeout-ms if less; must be below it)") { config, value throws(ConfigurationError) in
            config.redisWaitTimeoutGiven = try integer(value, flag: "--redis-wait-timeout-ms", in: 1...10000)
        },
        Option(flag: "--key-prefix", environment: "SESSION_FCGI_KEY_PREFIX", valueName: "PREFIX",
               help: "prefix of session keys in Redis (default sid_)") { config, value throws(ConfigurationError) in
            guard isKeyPrefix(value) else {
                throw ConfigurationError("--key-prefix: 1 to 64 printable characters without spaces or braces")
            }
            config.keyPrefix = value
        },
        Option(flag: "--idle-timeout", environment: "SESSION_FCGI_IDLE_TIMEOUT", valueName: "SECONDS",
               help: "session idle timeout: the Redis TTL, renewed by requests at most once per --touch-interval (default 1800)") { config, value throws(ConfigurationError) in
            config.idleTimeoutSeconds = try integer(value, flag: "--idle-timeout", in: 1...(400 * 86400))
        },
        Option(flag: "--touch-interval", environment: "SESSION_FCGI_TOUCH_INTERVAL", valueName: "SECONDS",
               help: "a request renews the idle timeout and last-seen time only this long after the last renewal, so a session expires between idle timeout minus this and idle timeout after its last request; 0: every request; at most half the idle timeout (default: idle timeout / 30, at most 60)") { config, value throws(ConfigurationError) in
            config.touchIntervalGiven = try integer(value, flag: "--touch-interval", in: 0...(200 * 86400))
        },
        Option(flag: "--absolute-timeout", environment: "SESSION_FCGI_ABSOLUTE_TIMEOUT", valueName: "SECONDS",
               help: "absolute session lifetime from creation, whatever the activity, and the cookie's Max-Age (default 43200 = 12 h)") { config, value throws(ConfigurationError) in
            config.absoluteTimeoutSeconds = try integer(value, flag: "--absolute-timeout", in: 1...(400 * 86400))
        },
        Option(flag: "--rotation-grace", environment: "SESSION_FCGI_ROTATION_GRACE", valueName: "SECONDS",
               help: "how long an id replaced by rotation (login) keeps working for in-flight requests (default 10; 0 allowed)") { config, value throws(ConfigurationError) in
            config.rotationGraceSeconds = try integer(value, flag: "--rotation-grace", in: 0...300)
        },
        Option(flag: "--max-attributes", environment: "SESSION_FCGI_MAX_ATTRIBUTES", valueName: "N",
               help: "most application attributes per session (default 64)") { config, value throws(ConfigurationError) in
            config.limits.maxAttributes = try integer(value, flag: "--max-attributes", in: 1...10_000)
        },
        Option(flag: "--max-session-bytes", environment: "SESSION_FCGI_MAX_SESSION_BYTES", valueName: "N",
               help: "most bytes of attribute names and values per session (default 16384)") { config, value throws(ConfigurationError) in
            config.limits.maxBytes = try integer(value, flag: "--max-session-bytes", in: 64...(16 << 20))
        },
        Option(flag: "--max-sessions-per-user", environment: "SESSION_FCGI_MAX_SESSIONS_PER_USER", valueName: "N",
               help: "most live sessions per user; a login past it ends the user's oldest session (default 20)") { config, value throws(ConfigurationError) in
            config.limits.maxSessionsPerUser = try integer(value, flag: "--max-sessions-per-user", in: 1...1000)
        },
        Option(flag: "--user-key-prefix", environment: "SESSION_FCGI_USER_KEY_PREFIX", valueName: "PREFIX",
               help: "prefix of the per-user index and revocation keys in Redis (default sidu_)") { config, value throws(ConfigurationError) in
            guard isKeyPrefix(value) else {
                throw ConfigurationError("--user-key-prefix: 1 to 64 printable characters without spaces or braces")
            }
            config.userKeyPrefix = value
        },
        Option(flag: "--users-file", environment: "SESSION_FCGI_USERS_FILE", valueName: "PATH",
               help: "users for POST /login, one 'user:pbkdf2-sha256$...' line each (see hash-password); none disables login") { config, value throws(ConfigurationError) in
            guard !value.isEmpty else { throw ConfigurationError("--users-file: empty path") }
            config.usersFile = value
        },
        Option(flag: "--login-concurrency", environment: "SESSION_FCGI_LOGIN_CONCURRENCY", valueName: "N",
               help: "password checks this instance runs at once (each is one core busy for the hash's time: about 50 ms at 100000 iterations); up to 2 x N more logins wait their turn (in all at most --threads minus --active-threads minus 1, at least 1), the rest get 503 with Retry-After at once, so a flood of wrong passwords takes at most N cores and a few threads from the other routes (default 1)") { config, value throws(ConfigurationError) in
            config.loginConcurrency = try integer(value, flag: "--login-concurrency", in: 1...256)
        },
        Option(flag: "--login-failure-limit", environment: "SESSION_FCGI_LOGIN_FAILURE_LIMIT", valueName: "N/SECONDS",
               help: "after N failed logins of one user name within SECONDS of the first, its logins get 429 with Retry-After, without a password check, until that window ends (any name counts, a user's or not; logins through /trusted-login are not counted); 0 turns it off (default 10/900)") { config, value throws(ConfigurationError) in
            config.loginFailureLimit = try loginFailureLimit(value)
        },
        Option(flag: "--login-wait-ms", environment: "SESSION_FCGI_LOGIN_WAIT_MS", valueName: "MS",
               help: "how long a login waits for its turn before 503 with Retry-After (keep it plus the hash's time below nginx's fastcgi_read_timeout) (default 1000)") { config, value throws(ConfigurationError) in
            config.loginWaitMilliseconds = try integer(value, flag: "--login-wait-ms", in: 0...4000)
        },
        Option(flag: "--admin-token", environment: "SESSION_FCGI_ADMIN_TOKEN", valueName: "TOKEN",
               help: "bearer token for POST /admin/revoke-user (at least 32 characters, random); none disables the admin routes. Prefer --admin-token-file: a flag is visible in ps") { config, value throws(ConfigurationError) in
            try SecretRules.checkStrong(value, what: "--admin-token")
            config.adminToken = value
        },
        Option(flag: "--admin-token-file", environment: "SESSION_FCGI_ADMIN_TOKEN_FILE", valueName: "PATH",
               help: "read the admin token from this file (mode 0600; trailing line break ignored)") { config, value throws(ConfigurationError) in
            config.adminToken = try SecretRules.adminToken(file: value, into: &config)
            config.adminTokenFile = value
        },
        Option(flag: "--cookie-signing-keys", environment: "SESSION_FCGI_COOKIE_SIGNING_KEYS", valueName: "KEY[,KEY...]",
               help: "sign session cookies with HMAC-SHA256; the first key signs, all verify (each at least 32 random characters). Prefer --cookie-signing-keys-file") { config, value throws(ConfigurationError) in
            config.cookieSigningKeys = try SecretRules.signingKeys(value.split(separator: ","), what: "--cookie-signing-keys")
        },
        Option(flag: "--cookie-signing-keys-file", environment: "SESSION_FCGI_COOKIE_SIGNING_KEYS_FILE", valueName: "PATH",
               help: "read the cookie signing keys from this file, one per line, the signing key first (mode 0600); keep a retired key listed for the absolute timeout, since cookies are re-sent only when the id changes") { config, value throws(ConfigurationError) in
            config.cookieSigningKeys = try SecretRules.signingKeys(file: value, into: &config)
            config.cookieSigningKeysFile = value
        },
        Option(flag: "--trusted-login-keys-file", environment: "SESSION_FCGI_TRUSTED_LOGIN_KEYS_FILE", valueName: "PATH",
               help: "enable GET /trusted-login: an application that checks users itself logs a browser in through nginx's /_session_login with an assertion MAC'd by one of these keys (README, 'Logging in from an application'); one key per line, each at least 32 random characters, every one verifies, # comments allowed; a file without keys turns it off, and so does one that cannot be used at a reload (mode 0600; reloaded on SIGHUP; default: off)") { config, value throws(ConfigurationError) in
            config.trustedLoginKeys = try SecretRules.trustedLoginKeys(file: value, into: &config)
            config.trustedLoginKeysFile = value
        },
        Option(flag: "--encryption-keys-file", environment: "SESSION_FCGI_ENCRYPTION_KEYS_FILE", valueName: "PATH",
               help: "seal session values at rest with AES-256-GCM: attributes, user, user agent and CSRF token (counters and times stay plain); one 'key-id:base64-of-32-bytes' line per key (`openssl rand -base64 32`), the first seals, every one opens, # comments allowed; keep a retired key listed for the absolute timeout after it stops being first (mode 0600; default: off)") { config, value throws(ConfigurationError) in
            let text = try SecretRules.readSecret(value, what: "--encryption-keys-file", into: &config)
            config.encryptionKeys = try SealingKeyFile.parse(text, what: "--encryption-keys-file")
            config.encryptionKeysFile = value
        },
        Option(flag: "--store-id-hashes", environment: "SESSION_FCGI_STORE_ID_HASHES", valueName: "yes|no",
               help: "name sessions in Redis (keys, user index, rotation aliases) by SHA-256 of their ids, so a copy of Redis holds no id a browser could present; switching it ends existing sessions (default no)") { config, value throws(ConfigurationError) in
            config.storeIDHashes = try yesNo(value, flag: "--store-id-hashes")
        },
        Option(flag: "--allowed-origins", environment: "SESSION_FCGI_ALLOWED_ORIGINS", valueName: "ORIGIN[,ORIGIN...]",
               help: "origins (https://host[:port]) allowed to POST besides the request's own") { config, value throws(ConfigurationError) in
            config.allowedOrigins = value.split(separator: ",").map { String($0).lowercased() }
        },
        Option(flag: "--auth-slides", environment: "SESSION_FCGI_AUTH_SLIDES", valueName: "yes|no",
               help: "whether GET /auth (nginx auth_request) renews the session's idle timeout, like any request at most once per --touch-interval; no: only the routes of session-fcgi itself keep a session alive (default yes)") { config, value throws(ConfigurationError) in
            config.authSlides = try yesNo(value, flag: "--auth-slides")
        },
        Option(flag: "--cookie-name", environment: "SESSION_FCGI_COOKIE_NAME", valueName: "NAME",
               help: "session cookie name (default sid; a __Host- name forces Secure, Path=/ and no Domain)") { config, value throws(ConfigurationError) in
            guard !value.isEmpty, value.utf8.allSatisfy(isCookieNameByte) else {
                throw ConfigurationError("--cookie-name: not a valid cookie name")
            }
            config.session.cookieName = value
        },
        Option(flag: "--cookie-path", environment: "SESSION_FCGI_COOKIE_PATH", valueName: "PATH",
               help: "cookie Path (default /)") { config, value throws(ConfigurationError) in
            guard value.hasPrefix("/"), value.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ";") }) else {
                throw ConfigurationError("--cookie-path: must start with / and hold no spaces or ';'")
            }
            config.session.cookiePath = value
        },
        Option(flag: "--cookie-domain", environment: "SESSION_FCGI_COOKIE_DOMAIN", valueName: "DOMAIN",
               help: "cookie Domain (default none: a host-only cookie, the safest)") { config, value throws(ConfigurationError) in
            guard !value.isEmpty, value.utf8.allSatisfy({ isDomainByte($0) }) else {
                throw ConfigurationError("--cookie-domain: letters, digits, '-' and '.' only")
            }
            config.session.cookieDomain = value
        },
        Option(flag: "--cookie-secure", environment: "SESSION_FCGI_COOKIE_SECURE", valueName: "auto|always",
               help: "auto: Secure when the request came over HTTPS; always: on every cookie (default auto)") { config, value throws(ConfigurationError) in
            guard let policy = SessionConfiguration.SecurePolicy(rawValue: value.lowercased()) else {
                throw ConfigurationError("--cookie-secure: auto or always")
            }
            config.session.securePolicy = policy
        },
        Option(flag: "--cookie-samesite", environment: "SESSION_FCGI_COOKIE_SAMESITE", valueName: "Strict|Lax|None",
               help: "cookie SameSite (default Lax; None implies Secure)") { config, value throws(ConfigurationError) in
            guard let sameSite = SameSite.allCases.first(where: { $0.rawValue.lowercased() == value.lowercased() }) else {
                throw ConfigurationError("--cookie-samesite: Strict, Lax or None")
            }
            config.session.sameSite = sameSite
        },
        Option(flag: "--cookie-lifetime", environment: "SESSION_FCGI_COOKIE_LIFETIME", valueName: "max-age|session",
               help: "max-age: the cookie carries Max-Age (the absolute timeout; after a login, the time the session has left of it); session: a browser-session cookie (default max-age)") { config, value throws(ConfigurationError) in
            switch value.lowercased() {
            case "max-age": config.session.persistentCookie = true
            case "session": config.session.persistentCookie = false
            default: throw ConfigurationError("--cookie-lifetime: max-age or session")
            }
        },
        Option(flag: "--retry-after", environment: "SESSION_FCGI_RETRY_AFTER", valueName: "SECONDS",
               help: "Retry-After sent with 503 while Redis is unavailable (default 1)") { config, value throws(ConfigurationError) in
            config.retryAfterSeconds = try integer(value, flag: "--retry-after", in: 0...3600)
        },
        Option(flag: "--log-file", environment: "SESSION_FCGI_LOG_FILE", valueName: "PATH",
               help: "append logs here (default standard error, which spawn-fcgi discards)") { config, value throws(ConfigurationError) in
            guard !value.isEmpty else { throw ConfigurationError("--log-file: empty path") }
            config.logFile = value
        },
        Option(flag: "--log-key-file", environment: "SESSION_FCGI_LOG_KEY_FILE", valueName: "PATH",
               help: "key for the hashes that stand for session ids in the logs; give every instance the same file to follow a session across them (default: a random key per process)") { config, value throws(ConfigurationError) in
            let key = try SecretRules.readSecret(value, what: "--log-key-file", into: &config)
            try SecretRules.checkStrong(key, what: "--log-key-file")
            config.logHashKey = key
        },
        Option(flag: "--log-level", environment: "SESSION_FCGI_LOG_LEVEL", valueName: "LEVEL",
               help: "debug (every request: route, status, time), info (lifecycle events), warning or error (default info)") { config, value throws(ConfigurationError) in
            let levels: [String: Logger.Level] = ["debug": .debug, "info": .info, "warning": .warning, "error": .error]
            guard let level = levels[value.lowercased()] else { throw ConfigurationError("--log-level: debug, info, warning or error") }
            config.logLevel = level
        },
    ]

    private static func yesNo(_ value: String, flag: String) throws(ConfigurationError) -> Bool {
        switch value.lowercased() {
        case "yes", "true", "1": return true
        case "no", "false", "0": return false
        default: throw ConfigurationError("\(flag): yes or no")
        }
    }

    /// A path to a file that exists and can be read now (checked at start, not at first use).
    private static func readablePath(_ value: String, flag: String) throws(ConfigurationError) -> String {
        guard !value.isEmpty else { throw ConfigurationError("\(flag): no path given") }
        guard access(value, R_OK) == 0 else { throw ConfigurationError("\(flag): cannot read \(value): \(String(cString: strerror(errno)))") }
        return value
    }

    private static func integer(_ text: String, flag: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let value = Int(text), range.contains(value) else {
            throw ConfigurationError("\(flag): expected a whole number in \(range.lowerBound)...\(range.upperBound), got '\(text)'")
        }
        return value
    }

    private static func isCookieNameByte(_ byte: UInt8) -> Bool {
        // RFC 6265 cookie-name is an RFC 7230 token.
        if byte <= 32 || byte >= 127 { return false }
        return !"()<>@,;:\\\"/[]?={}".utf8.contains(byte)
    }

    private static func isDomainByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."):
            return true
        default:
            return false
        }
    }

    /// `N/SECONDS`, or `0` for none.
    private static func loginFailureLimit(_ value: String) throws(ConfigurationError) -> LoginFailureLimit? {
        if value == "0" { return nil }
        let parts = value.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Int(parts[0]), (1...1000).contains(count),
              let seconds = Int(parts[1]), (1...86_400).contains(seconds) else {
            throw ConfigurationError("--login-failure-limit: N/SECONDS (N 1-1000, SECONDS 1-86400, e.g. 10/900), or 0 for none")
        }
        return LoginFailureLimit(count: count, windowSeconds: seconds)
    }

    /// A Redis key prefix: printable, no spaces, and no braces (a `{` would change which part
    /// of a key Redis Cluster hashes, and so the slot).
    private static func isKeyPrefix(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 64
            && value.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "{") && $0 != UInt8(ascii: "}") }
    }
}

/// Rules for secrets given as options: files read once at start, keys and tokens that a
/// guess cannot find.
enum SecretRules {
    /// Reads a secret file, recording a warning in the configuration when others may read it.
    static func readSecret(_ path: String, what: String, into config: inout AppConfiguration) throws(ConfigurationError) -> String {
        let value: String
        do { value = try ConfigurationFile.secret(at: path) } catch { throw ConfigurationError("\(what): \(error)") }
        guard !value.isEmpty else { throw ConfigurationError("\(what): \(path) is empty") }
        if ConfigurationFile.isReadableByOthers(path) {
            config.warnings.append("\(what): \(path) is readable by every local user; chmod 600 it")
        }
        return value
    }

    /// At least 32 bytes and about 96 bits by the text's own character statistics, so
    /// `aaaa…` or a short word repeated is refused (`openssl rand -base64 32` passes).
    static func checkStrong(_ secret: some StringProtocol, what: String) throws(ConfigurationError) {
        let bytes = Array(secret.utf8)
        guard bytes.count >= 32 else { throw ConfigurationError("\(what): at least 32 characters") }
        guard estimatedBits(bytes) >= 96 else {
            throw ConfigurationError("\(what): too predictable; use a random value such as `openssl rand -base64 32`")
        }
    }

    /// The admin token file's token, checked.
    static func adminToken(file: String, into config: inout AppConfiguration) throws(ConfigurationError) -> String {
        let token = try readSecret(file, what: "--admin-token-file", into: &config)
        try checkStrong(token, what: "--admin-token-file")
        return token
    }

    /// The signing keys file's keys (one per line, `#` comments), checked.
    static func signingKeys(file: String, into config: inout AppConfiguration) throws(ConfigurationError) -> [String] {
        let what = "--cookie-signing-keys-file"
        return try signingKeys(keyLines(try readSecret(file, what: what, into: &config)), what: what)
    }

    /// A keys file's keys: one per line, leading spaces ignored, `#` comments and blank lines
    /// skipped.
    static func keyLines(_ text: String) -> [Substring] {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingPrefix(while: { $0 == " " }) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    static func signingKeys(_ keys: [some StringProtocol], what: String) throws(ConfigurationError) -> [String] {
        guard !keys.isEmpty else { throw ConfigurationError("\(what): no keys given") }
        for key in keys { try checkStrong(key, what: what) }
        return keys.map { String($0) }
    }

    /// The trusted-login keys file's keys (one per line, `#` comments), checked like signing
    /// keys; a file without any is allowed and turns trusted login off (emptying the file is
    /// how a leaked key is withdrawn at once).
    static func trustedLoginKeys(file: String, into config: inout AppConfiguration) throws(ConfigurationError) -> [String] {
        let what = "--trusted-login-keys-file"
        let text: String
        do { text = try ConfigurationFile.text(at: file) } catch { throw ConfigurationError("\(what): \(error)") }
        if ConfigurationFile.isReadableByOthers(file) {
            config.warnings.append("\(what): \(file) is readable by every local user, and any of its keys logs in any user; chmod 600 it")
        }
        let lines = keyLines(text)
        for line in lines { try checkStrong(line, what: what) }
        return lines.map { String($0) }
    }

    /// Length × the empirical Shannon entropy per character.
    static func estimatedBits(_ bytes: [UInt8]) -> Double {
        var counts = [Int](repeating: 0, count: 256)
        for byte in bytes { counts[Int(byte)] += 1 }
        let total = Double(bytes.count)
        var perCharacter = 0.0
        for count in counts where count > 0 {
            let p = Double(count) / total
            perCharacter -= p * log2(p)
        }
        return perCharacter * total
    }
}
