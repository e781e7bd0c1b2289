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
            } else {
                report(true, "no users file: login is disabled")
            }
            report(true, configuration.cookieSigningKeys.isEmpty ? "cookies are not signed" : "cookies signed with \(configuration.cookieSigningKeys.count) key(s)")
            report(true, loaded.settings.adminToken == nil ? "no admin token: admin routes are disabled" : "admin token set")
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
        do {
            try client.checkHealth()
            report(true, "Redis at \(redis) answers PING")
            if let warning = Self.evictionWarning(client) { CommandLineTool.writeStandardOutput("warning  " + warning + "\n") }
        } catch .server(let refusal) where refusal.refusesCredentials {
            report(false, "Redis at \(redis) refuses these credentials: \(refusal.loggableMessage) (\(refusal.credentialAdvice))")
            return 1
        } catch .server(let refusal) where refusal.refusesDatabase {
            report(false, "Redis at \(redis) refuses the database of the URL: \(refusal.loggableMessage) (check the /db at the end of --redis-url)")
            return 1
        } catch .tlsRefused(let why) {
            report(false, "Redis at \(redis) refuses this TLS set-up: \(why)")
            return 1
        } catch {
            CommandLineTool.writeStandardOutput("PROBLEM  Redis at \(redis) cannot be reached now: \(error)\n")
            return 2
        }
        return 0
    }

    /// A Redis that evicts keys under memory pressure can drop a user's index while the
    /// sessions it lists live on: revoke-all then misses them (README, Known limits). `nil` when
    /// the policy is `noeviction`, there is no memory limit, or this user may not read them (an
    /// ACL without `INFO`). On a cluster, the node asked is one of the masters.
    static func evictionWarning(_ client: RedisClient) -> String? {
        guard let text = (try? client.send(RedisCommand("INFO", "memory"), key: nil))?.text else { return nil }
        func field(_ name: String) -> String? {
            text.split(whereSeparator: \.isNewline).first { $0.hasPrefix(name + ":") }
                .map { String($0.dropFirst(name.count + 1).filter { !$0.isWhitespace }) }
        }
        // Without a memory limit (maxmemory 0) nothing is evicted, whatever the policy.
        guard let policy = field("maxmemory_policy"), policy != "noeviction", field("maxmemory") != "0" else { return nil }
        return "Redis evicts keys under memory pressure (maxmemory-policy \(policy)): it can drop a user's index while the sessions it lists live on, and revoke-all would miss them; set maxmemory-policy noeviction (a full Redis then answers 503 until sessions expire)"
    }
}
