import FastCGIServer
import RedisClient
import SessionCore

/// `session-fcgi check-config`: everything the server would check at start, and a PING of Redis
/// through the same client, without binding a socket or serving. Prints one line per check;
/// exit status 0 when the configuration is usable, 1 when it is not (Redis refusing the
/// credentials included), 2 when it is valid but Redis cannot be reached now. (Options and secret files were already parsed and checked
/// before this runs: a bad one never gets here.)
struct ConfigurationCheck {
    let configuration: AppConfiguration

    func run() -> Int32 {
        var problems = 0
        func report(_ ok: Bool, _ line: String) {
            CommandLineTool.writeStandardOutput((ok ? "ok       " : "PROBLEM  ") + line + "\n")
            if !ok { problems += 1 }
        }
        report(true, "options and environment parsed; secret files read")
        for warning in configuration.warnings { CommandLineTool.writeStandardOutput("warning  " + warning + "\n") }
        if let path = configuration.logFile {
            do {
                _ = try LogSink(path: path)
                report(true, "log file \(path) can be opened for appending")
            } catch {
                report(false, error.description)
            }
        }
        do {
            let loaded = try configuration.loadReloadableSettings()
            if let path = configuration.usersFile {
                report(loaded.problems.isEmpty, "users file \(path): \(loaded.settings.users?.hashes.count ?? 0) users"
                       + (loaded.problems.isEmpty ? "" : "; " + loaded.problems.joined(separator: "; ")))
                if ConfigurationFile.isReadableByOthers(path) {
                    // (As the instances log at start: the hashes can be attacked offline.)
                    CommandLineTool.writeStandardOutput("warning  users file \(path) is readable by every local user; chmod 640 it\n")
                }
            } else {
                report(true, "no users file: login is disabled")
            }
            report(true, configuration.cookieSigningKeys.isEmpty ? "cookies are not signed" : "cookies signed with \(configuration.cookieSigningKeys.count) key(s)")
            report(true, loaded.settings.adminToken == nil ? "no admin token: admin routes are disabled" : "admin token set")
            if let problem = loaded.settings.trustedLoginProblem {
                report(false, problem)
            } else if configuration.trustedLoginKeysFile != nil {
                report(true, loaded.settings.trustedLoginKeys.isEmpty ? "trusted login: the keys file holds no key, so it is off"
                                                                      : "trusted login: \(loaded.settings.trustedLoginKeys.count) key(s)")
            }
        } catch {
            report(false, error.description)
        }
        do {
            _ = try configuration.makeLayout()
            report(true, "data at rest: \(configuration.atRestSummary)")
        } catch {
            report(false, error.description)
        }
        if case .tcp(let host, _) = configuration.server.listen, let host, !["127.0.0.1", "::1", "localhost"].contains(host),
           configuration.server.allowedPeers == nil {
            CommandLineTool.writeStandardOutput("warning  listening on \(host) with the default peer list (loopback only): nginx on other hosts needs --allowed-peers\n")
        }
        for warning in Self.nginxTimingWarnings(configuration) { CommandLineTool.writeStandardOutput("warning  " + warning + "\n") }
        let redis = configuration.redisConfiguration
        if redis.tls?.insecure == true {
            CommandLineTool.writeStandardOutput("warning  --redis-tls-insecure: Redis certificates and names are not verified\n")
        }
        let client = RedisClient(configuration: redis)
        do {
            try client.validateTLS()
        } catch {
            report(false, "Redis TLS: \(error)")
            return 1
        }
        guard problems == 0 else { return 1 }
        if case .sentinel(_, let name) = redis.topology, let problem = Self.sentinelProblem(client, masterName: name) {
            report(false, "Redis at \(redis): \(problem)")
            return 1
        }
        do {
            try client.checkHealth()
            report(true, "Redis at \(redis) answers PING")
            switch Self.topologyProblem(client, redis) {
            case .none: break
            case .wrongKind(let problem):
                report(false, "Redis at \(redis): \(problem)")
                return 1
            case .replicaNow:
                // Behind a DNS name or virtual address that follows failovers (a managed
                // Redis's primary endpoint), this lasts seconds: not a reason to refuse a start.
                CommandLineTool.writeStandardOutput("PROBLEM  Redis at \(redis) is a read-only replica now: writes fail until the URL reaches a master; if this lasts, the URL names a replica (point it at the master, or use redis-sentinel://)\n")
                return 2
            }
            if let problem = Self.scriptingProblem(client) {
                report(false, "Redis at \(redis): \(problem)")
                return 1
            }
            report(true, "Redis at \(redis) runs the store's scripts")
            if let warning = Self.memoryWarning(client) { CommandLineTool.writeStandardOutput("warning  " + warning + "\n") }
            if let warning = Self.persistenceWarning(client) { CommandLineTool.writeStandardOutput("warning  " + warning + "\n") }
        } catch .server(let refusal) where refusal.refusesCredentials {
            var hint = ""
            if case .single = redis.topology, !refusal.fromSentinel {
                hint = "; if this address is a Sentinel, use redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME"
            }
            report(false, "Redis at \(redis) refuses these credentials: \(refusal.loggableMessage) (\(refusal.credentialAdvice)\(hint))")
            return 1
        } catch .server(let refusal) where refusal.refusesDatabase {
            report(false, "Redis at \(redis) refuses the database of the URL: \(refusal.loggableMessage) (check the /db at the end of --redis-url)")
            return 1
        } catch .tlsRefused(let why) {
            report(false, "Redis at \(redis) refuses this TLS set-up: \(why)")
            return 1
        } catch .server(let refusal) where refusal.message.contains("cluster support disabled") {
            // Holds until the URL changes, not an outage.
            report(false, "Redis at \(redis) answers with an error: \(refusal.loggableMessage) (it is not a Cluster node: use redis:// for one Redis, redis-sentinel:// behind Sentinels)")
            return 1
        } catch .server(let refusal) where refusal.isUnknownCommand {
            report(false, "Redis at \(redis) does not know a command the store needs: \(refusal.loggableMessage)")
            return 1
        } catch {
            CommandLineTool.writeStandardOutput("PROBLEM  Redis at \(redis) cannot be reached now: \(error)\n")
            return 2
        }
        return 0
    }

    /// What a plain URL (`redis://`) reaches, when the store cannot use it as its one Redis.
    enum TopologyProblem {
        /// A Sentinel, or a Cluster of several shards (most keys would answer `MOVED`): holds
        /// until the URL changes.
        case wrongKind(String)
        /// A read-only replica: a mistake, or a failover in progress behind a name that follows it.
        case replicaNow
    }

    /// `nil` when the plain URL reaches a master of its own (a one-shard Cluster serves every
    /// slot, so it does too), or when this user may not ask (`INFO` refused by an ACL).
    static func topologyProblem(_ client: RedisClient, _ redis: RedisConfiguration) -> TopologyProblem? {
        guard case .single = redis.topology,
              let server = (try? client.send(RedisCommand("INFO", "server"), key: nil))?.text else { return nil }
        switch infoField("redis_mode", in: server) {
        case "sentinel":
            return .wrongKind("this is a Sentinel, not a data server: use redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME")
        case "cluster":
            let info = (try? client.send(RedisCommand("CLUSTER", "INFO"), key: nil))?.text ?? ""
            if let shards = infoField("cluster_size", in: info).flatMap(Int.init), shards > 1 {
                return .wrongKind("this is a node of a Cluster of \(shards) shards: use redis-cluster://HOST:PORT[,HOST:PORT...] (a plain URL would get MOVED for most keys)")
            }
        default: break
        }
        guard let replication = (try? client.send(RedisCommand("INFO", "replication"), key: nil))?.text else { return nil }
        return infoField("role", in: replication) == "slave" ? .replicaNow : nil
    }

    /// Whether the store's scripts run: `EVALSHA` (and `SCRIPT LOAD`, after a restart of Redis)
    /// renamed or disabled, or an ACL user without them, fails every request.
    static func scriptingProblem(_ client: RedisClient) -> String? {
        do {
            let reply = try client.run(RedisScript("return 1"), keys: [], arguments: [])
            return reply.integer == 1 ? nil : "a script answered \(reply) instead of 1"
        } catch .server(let error) where error.isUnknownCommand {
            return "scripts cannot run (\(error.loggableMessage)): the store needs EVALSHA and EVAL, which this server has renamed or disabled"
        } catch .server(let error) where error.refusesCredentials {
            return "scripts are refused (\(error.loggableMessage)): the ACL user needs the commands of deploy/redis/session-store.acl"
        } catch {
            return nil  // an outage now, reported by the next checks or the instances' logs
        }
    }

    /// Behind Sentinels: a master name no answering Sentinel knows, or an address that is not
    /// a Sentinel at all, holds until the configuration changes (exit 1, not "unreachable
    /// now"); a Sentinel that does not answer is a warning (the others serve).
    static func sentinelProblem(_ client: RedisClient, masterName: String) -> String? {
        var answered = 0, knowing = 0
        var refusal: String?
        for (sentinel, answer) in client.sentinelAnswers() {
            switch answer {
            case .success(let master):
                answered += 1
                if master != nil { knowing += 1 }
            case .failure(.server(let error)) where error.isUnknownCommand:
                return "\(sentinel) is not a Sentinel (\(error.loggableMessage)): list the Sentinels' addresses, not the data servers'"
            case .failure(.server(let error)) where error.refusesCredentials:
                // One Sentinel out of step (a password rotated one at a time) is skipped at
                // run time: a problem only when none answers.
                let advice = RedisServerError(message: error.message, fromSentinel: true).credentialAdvice
                let line = "the Sentinel at \(sentinel) refuses these credentials: \(error.loggableMessage) (\(advice))"
                CommandLineTool.writeStandardOutput("warning  \(line)\n")
                refusal = refusal ?? line
            case .failure(let error):
                CommandLineTool.writeStandardOutput("warning  the Sentinel at \(sentinel) does not answer now: \(error)\n")
            }
        }
        if answered == 0, let refusal { return refusal }
        guard answered > 0, knowing == 0 else { return nil }
        return "no Sentinel knows a master named \(masterName) (\(answered) answered): check the name at the end of the URL, which is case-sensitive"
    }

    private static func infoField(_ name: String, in text: String) -> String? {
        text.split(whereSeparator: \.isNewline).first { $0.hasPrefix(name + ":") }
            .map { String($0.dropFirst(name.count + 1).filter { !$0.isWhitespace }) }
    }

    /// Without an append-only file a Redis restart loses the sessions written since its last
    /// snapshot (all of them without snapshots): every user is logged out, silently. `nil` with
    /// `appendonly yes`, or when this user may not read `INFO`.
    static func persistenceWarning(_ client: RedisClient) -> String? {
        guard let text = (try? client.send(RedisCommand("INFO", "persistence"), key: nil))?.text,
              infoField("aof_enabled", in: text) == "0" else { return nil }
        return "Redis keeps no append-only file (appendonly no): a restart of Redis loses the sessions written since its last snapshot, logging those users out; set appendonly yes (README, Durability)"
    }

    /// The template's nginx (nginx/session-store.conf.template) waits 5 s for an instance's
    /// answer and keeps idle upstream connections 60 s. Settings that outlast those give
    /// clients nginx's bare 504 instead of a 503 with Retry-After (a request that nginx gave up
    /// on may still be carried out), or closed connections that nginx is about to reuse
    /// (a 502 for that request). Warnings, since a site may have raised nginx's figures.
    static func nginxTimingWarnings(_ configuration: AppConfiguration) -> [String] {
        var warnings: [String] = []
        // Round trips one after another, each bounded by --redis-timeout-ms (the template's
        // comment on fastcgi_read_timeout): a logged-in page up to 7 within nginx's 5 s; a
        // login up to 11, after waiting up to --login-wait-ms for a password check, within the
        // 8 s of the login locations.
        let timeout = configuration.redisCommandTimeoutMilliseconds
        if 7 * timeout > 4700 {
            warnings.append("--redis-timeout-ms \(timeout): a page's 7 round trips may take \(7 * timeout) ms, more than the template's nginx waits (fastcgi_read_timeout 5s), so clients would get nginx's 504 instead of a 503 with Retry-After; raise fastcgi_read_timeout and fastcgi_send_timeout to at least \((7 * timeout + 999) / 1000 + 1)s, or keep --redis-timeout-ms at 650 or less")
        }
        let login = 11 * timeout + configuration.loginWaitMilliseconds
        if login > 7700 {
            warnings.append("--redis-timeout-ms \(timeout) with --login-wait-ms \(configuration.loginWaitMilliseconds): a login may take \(login) ms, more than the template's login locations wait (8s); raise their fastcgi_read_timeout to at least \((login + 999) / 1000 + 1)s")
        }
        if configuration.server.idleConnectionTimeoutSeconds <= 60 {
            warnings.append("--idle-connection-timeout \(configuration.server.idleConnectionTimeoutSeconds): at or below the template's upstream keepalive_timeout (60s), so an instance can close a kept connection just as nginx reuses it (a 502 for that request); keep it above nginx's (default 75)")
        }
        return warnings
    }

    /// What Redis's memory settings risk (README, Known limits), from one `INFO memory`:
    /// without `maxmemory`, a flood of requests without a session (each creates one) grows
    /// Redis until the host runs out of memory; with it, a policy that evicts keys can drop a
    /// user's index while the sessions it lists live on, so revoke-all misses them. `nil` for a
    /// limit with `noeviction`, or when this user may not read `INFO` (an ACL without it). On a
    /// cluster, the node asked is one of the masters.
    static func memoryWarning(_ client: RedisClient) -> String? {
        guard let text = (try? client.send(RedisCommand("INFO", "memory"), key: nil))?.text else { return nil }
        if infoField("maxmemory", in: text) == "0" {
            return "Redis has no memory limit (maxmemory 0): every request without a session creates one, so a flood grows Redis until the host runs out of memory; set maxmemory (with maxmemory-policy noeviction: a full Redis then answers 503 until sessions expire) (README, Known limits)"
        }
        guard let policy = infoField("maxmemory_policy", in: text), policy != "noeviction" else { return nil }
        return "Redis evicts keys under memory pressure (maxmemory-policy \(policy)): it can drop a user's index while the sessions it lists live on, and revoke-all would miss them; set maxmemory-policy noeviction (a full Redis then answers 503 until sessions expire)"
    }
}
