import CoreMetrics
import FastCGIServer
import Glibc
import Logging
import RedisClient
import SessionCrypto
import SessionRedis

/// Builds the FastCGI server and the per-thread responders from one configuration, and runs it:
/// the log (a file reopened on SIGHUP), the metrics registry (swift-metrics bootstrapped with
/// it, so the Redis client's metrics land there too), the settings SIGHUP reloads.
public struct Application: Sendable {
    public let configuration: AppConfiguration

    public init(configuration: AppConfiguration) {
        self.configuration = configuration
    }

    /// Serves until SIGTERM or SIGINT.
    public func run() throws(ApplicationError) {
        let sink: LogSink
        do { sink = try LogSink(path: configuration.logFile) } catch { throw .cannotOpenLog(error.description) }
        let level = configuration.logLevel
        let log = Logger(label: "session-fcgi") { _ in LogfmtLogHandler(sink: sink, level: level) }
        log.info("starting", metadata: ["version": "\(ProductVersion.number)", "build": "\(ProductVersion.build)", "store": "\(configuration.redisConfiguration)", "key_prefix": "\(configuration.keyPrefix)",
                                        "at_rest": "\(configuration.atRestSummary)"])
        for warning in configuration.warnings { log.warning("\(warning)") }
        if configuration.redisConfiguration.tls?.insecure == true {
            log.warning("--redis-tls-insecure: Redis certificates and names are NOT verified; anyone on the path can read and change sessions")
        }
        do {
            try RedisClient(configuration: configuration.redisConfiguration).validateTLS()
        } catch {
            log.error("Redis TLS: \(error)")
            throw .redisTLS(error.description)
        }
        logRedisState(log: log)
        let layout: RedisSessionLayout
        do {
            layout = try configuration.makeLayout()
        } catch {
            log.error("\(error)")
            throw .atRest(error.description)
        }
        let settings = SettingsCell(try loadSettings(log: log).settings)
        let metrics = AppMetrics()
        MetricsSystem.bootstrap(metrics.factory)
        let hasher = LogSessionHasher(key: configuration.logHashKey.map { Array($0.utf8) })
        let server = FastCGIServer(configuration: configuration.server, log: log)
        let configuration = self.configuration
        let unopened = layout.unopenedValues
        let exposition: @Sendable () -> [UInt8] = {
            metrics.exposition(extra: Self.serverMetrics(server) + Self.atRestMetrics(unopened: unopened)
                + "# HELP session_log_lines_lost_total Log lines not written whole (a full disk, an unwritable file).\n"
                + "# TYPE session_log_lines_lost_total counter\nsession_log_lines_lost_total \(sink.linesLost)\n")
        }
        let passwordChecks = PasswordCheckGate(permits: configuration.loginConcurrency, waitMilliseconds: configuration.loginWaitMilliseconds,
                                               threads: configuration.server.threads, activeThreads: configuration.server.activeThreads)
        do {
            try server.run(onHangup: {
                do {
                    try sink.reopen()
                } catch {
                    log.error("SIGHUP: \(error); still writing to the old log file")
                }
                reloadRedisPassword(log: log)
                checkEncryptionKeysUnchanged(log: log)
                // Logged before the reload's own line: deploy/local reports the first one.
                func noteTrustedLoginProblem(_ problem: String?) {
                    guard let problem else { return }
                    log.error("SIGHUP: \(problem); trusted login is off until the file holds usable keys", metadata: ["event": "reload_failed"])
                }
                do {
                    let reloaded = try loadSettings(log: log, previous: settings.current)
                    settings.replace(with: reloaded.settings)
                    noteTrustedLoginProblem(reloaded.settings.trustedLoginProblem)
                    if reloaded.usersKept {
                        log.error("SIGHUP: signing keys, trusted-login keys and admin token reloaded; the users file cannot be used (see the lines before), so the previous users stay in use",
                                  metadata: ["event": "reload_failed"])
                    } else if reloaded.settings.trustedLoginProblem != nil {
                        log.info("SIGHUP: users, signing keys and admin token reloaded (trusted login off: see the line before)", metadata: ["event": "reload"])
                    } else {
                        log.info("SIGHUP: users, signing keys, trusted-login keys and admin token reloaded", metadata: ["event": "reload"])
                    }
                } catch {
                    log.error("SIGHUP: \(error); the previous settings stay in use", metadata: ["event": "reload_failed"])
                    // ... but the trusted-login keys follow their file whatever else failed: a
                    // withdrawn key must stop working at this reload.
                    var kept = settings.current
                    let trusted = configuration.loadTrustedLoginKeys()
                    (kept.trustedLoginKeys, kept.trustedLoginProblem) = (trusted.keys, trusted.problem)
                    settings.replace(with: kept)
                    noteTrustedLoginProblem(trusted.problem)
                }
            }) {
                let store = configuration.makeStore(layout: layout)
                metrics.redis.register(store.client.counters)
                return SessionResponder(configuration: configuration, store: store, settings: settings, log: log, metrics: metrics,
                                        hasher: hasher, rotationRetry: configuration.rotationRetry, passwordChecks: passwordChecks,
                                        exposition: exposition, unopenedValues: configuration.encryptionKeys.isEmpty ? nil : unopened)
            }
        } catch {
            log.error("\(error)")
            throw .server(error)
        }
    }

    /// Reads `--redis-password-file` again (SIGHUP): a changed password is what new Redis
    /// connections log in with from now on; connections already made stay logged in. So a
    /// password can be rotated without a restart: add the new one beside the old in Redis
    /// (`ACL SETUSER … >new`), write the file, reload, then remove the old one.
    ///
    /// A changed password is tried on a connection of its own first. One that Redis refuses is
    /// a refused reload (the previous password stays): taken, it would have worked until the
    /// connections were next replaced (a Redis restart, a failover, an idle timeout) and then
    /// failed every request). When Redis cannot be reached to try it, the
    /// new password is taken unchecked, with a warning: the operator changed it for a reason.
    private func reloadRedisPassword(log: Logger) {
        guard let path = configuration.redisPasswordFile, let source = configuration.redisPasswordSource else { return }
        let password: String
        do {
            password = try ConfigurationFile.secret(at: path)
        } catch {
            log.error("SIGHUP: --redis-password-file: \(error); the previous Redis password stays in use", metadata: ["event": "reload_failed"])
            return
        }
        guard !password.isEmpty else {
            log.error("SIGHUP: --redis-password-file: \(path) is empty; the previous Redis password stays in use", metadata: ["event": "reload_failed"])
            return
        }
        guard password != source.current else { return }
        var trial = configuration.redisConfiguration
        trial.passwordSource = nil
        trial.password = password
        do {
            try RedisClient(configuration: trial).checkHealth()
        } catch .server(let refusal) where refusal.refusesCredentials {
            log.error("SIGHUP: Redis refuses the password now in \(path) (\(refusal.loggableMessage)); the previous Redis password stays in use: give Redis the new password first (beside the old one: ACL SETUSER <user> >new), then reload again",
                      metadata: ["event": "reload_failed"])
            return
        } catch {
            log.warning("SIGHUP: the new Redis password could not be tried (\(error)); new connections log in with it from now on, unchecked",
                        metadata: ["event": "redis_password_reload"])
        }
        source.replace(with: password)
        log.info("SIGHUP: Redis password reloaded: new connections log in with it", metadata: ["event": "redis_password_reload"])
    }

    /// The encryption keys are read at start only (every instance must open what any other
    /// seals, so a key step is a rolling restart, docs/data-at-rest.md): a SIGHUP after the file
    /// changed says so, as a refused reload, instead of passing it over.
    private func checkEncryptionKeysUnchanged(log: Logger) {
        guard let path = configuration.encryptionKeysFile else { return }
        let current: [SealingKey]
        do {
            current = try SealingKeyFile.parse(try ConfigurationFile.secret(at: path), what: "--encryption-keys-file")
        } catch {
            log.error("SIGHUP: --encryption-keys-file: \(error); the keys read at start stay in use", metadata: ["event": "reload_failed"])
            return
        }
        guard current != configuration.encryptionKeys else { return }
        log.error("SIGHUP: \(path) changed, but encryption keys are read at start only: the keys read at start stay in use; restart the instances one at a time (docs/data-at-rest.md)",
                  metadata: ["event": "reload_failed"])
    }

    /// Says at start when Redis cannot be used, so that the log names the cause before the
    /// first 503: the instance serves anyway (it follows Redis when it comes back), but a
    /// refused password or ACL user will not fix itself.
    private func logRedisState(log: Logger) {
        let redis = configuration.redisConfiguration
        do {
            try RedisClient(configuration: redis).checkHealth()
        } catch .server(let refusal) where refusal.refusesCredentials {
            log.error("Redis at \(redis) refuses this instance's credentials (\(refusal.loggableMessage)): \(refusal.credentialAdvice); requests that need a session get 503 until they match",
                      metadata: ["event": "store_unavailable"])
        } catch .tlsRefused(let why) {
            log.error("Redis at \(redis) refuses this instance's TLS set-up (\(why)); requests that need a session get 503 until it matches",
                      metadata: ["event": "store_unavailable"])
        } catch {
            log.warning("Redis at \(redis) cannot be used now (\(error)); serving anyway: requests that need a session get 503 until it answers",
                        metadata: ["event": "store_unavailable"])
        }
    }

    /// The reloadable settings. A users file that cannot be read, or that has a line that
    /// cannot be used (each logged with its number and reason), is refused whole: at start that
    /// stops the program, with lines in the log (spawn-fcgi discards standard error); on SIGHUP
    /// (`previous` given) the previous users stay while the signing keys and admin token still
    /// reload (`usersKept`), so that a bad users file never holds back a key or token change.
    /// Any other file that cannot be used is an error (on SIGHUP every previous setting stays).
    private func loadSettings(log: Logger, previous: ReloadableSettings? = nil) throws(ApplicationError)
        -> (settings: ReloadableSettings, usersKept: Bool) {
        let loaded: (settings: ReloadableSettings, problems: [String])
        do {
            loaded = try configuration.loadReloadableSettings()
        } catch {
            log.error("\(error)")
            throw .cannotReadUsers(error.description)
        }
        if let path = configuration.usersFile {
            // A file with a line that cannot be used is refused whole (at start the program stops,
            // on SIGHUP the previous users stay): a half-written or mistyped file must not
            // silently lock users out, nor run with fewer users than the operator wrote.
            guard loaded.problems.isEmpty else {
                for problem in loaded.problems { log.error("users file \(path): \(problem)") }
                guard let previous else {
                    throw .cannotReadUsers("users file \(path): it cannot be used (see the lines before); `session-fcgi check-config` lists why")
                }
                var kept = loaded.settings
                kept.users = previous.users
                return (kept, true)
            }
            log.info("login enabled for \(loaded.settings.users?.hashes.count ?? 0) users")
            if ConfigurationFile.isReadableByOthers(path) { log.warning("users file \(path) is readable by every local user; chmod 640 it") }
        }
        return (loaded.settings, false)
    }

    /// The FastCGI server's request and connection counters in Prometheus text (read at
    /// scrape time).
    static func atRestMetrics(unopened: UnopenedValueCount) -> String {
        "# HELP session_sealed_values_unopened_total Sealed session values read that did not open (a key missing from this instance's ring, or values altered in Redis).\n"
            + "# TYPE session_sealed_values_unopened_total counter\nsession_sealed_values_unopened_total \(unopened.value)\n"
    }

    static func serverMetrics(_ server: FastCGIServer) -> String {
        let counters = server.counters.snapshot
        var text = "# TYPE fastcgi_requests_total counter\nfastcgi_requests_total \(server.requestsServed)\n"
        text += "# HELP fastcgi_batches_total Times a worker took requests from epoll (requests / batches: requests per batch).\n"
        text += "# TYPE fastcgi_batches_total counter\nfastcgi_batches_total \(server.batchesServed)\n"
        text += "# TYPE fastcgi_connections_total counter\n"
        for (outcome, value) in [("accepted", counters.accepted), ("refused_peer", counters.refusedPeers), ("over_limit", counters.overLimit),
                                 ("closed_silent", counters.silentClosed), ("closed_idle", counters.idleClosed),
                                 ("write_failed", counters.writeFailures)] {
            text += "fastcgi_connections_total{outcome=\"\(outcome)\"} \(value)\n"
        }
        text += "# HELP fastcgi_connections_open FastCGI connections open now (at most --max-connections).\n"
        text += "# TYPE fastcgi_connections_open gauge\nfastcgi_connections_open \(counters.open)\n"
        return text
    }
}

/// Why the application could not run.
public enum ApplicationError: Error, Equatable, Sendable, CustomStringConvertible {
    case cannotOpenLog(String)
    case cannotReadUsers(String)
    case redisTLS(String)
    /// The encryption keys or id hashing could not be set up.
    case atRest(String)
    case server(FastCGIServerError)

    public var description: String {
        switch self {
        case .cannotOpenLog(let why): return why
        case .cannotReadUsers(let why): return why
        case .redisTLS(let why): return "Redis TLS: \(why)"
        case .atRest(let why): return why
        case .server(let error): return error.description
        }
    }
}
