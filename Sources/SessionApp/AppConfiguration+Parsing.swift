import SessionCore

extension AppConfiguration {
    /// What the command line asked for.
    public enum Invocation: Equatable, Sendable {
        case serve(AppConfiguration)
        case help(String)
        /// `--version`: the release line to print.
        case version(String)
        /// `session-fcgi revoke-user USER`: end every session of USER and exit.
        case revokeUser(String, AppConfiguration)
        /// `session-fcgi hash-password [--iterations N]`: read a password on stdin, print a
        /// users-file hash with N PBKDF2 iterations.
        case hashPassword(iterations: Int)
        /// `session-fcgi check-config [OPTIONS]`: validate a configuration without serving.
        case checkConfig(AppConfiguration)
    }

    /// Builds the configuration: defaults, then environment variables, then flags
    /// (`--flag VALUE` or `--flag=VALUE`), then cross-checks.
    public static func parse(arguments: [String], environment: [String: String]) throws(ConfigurationError) -> Invocation {
        var arguments = arguments
        var subcommand: String?
        var subject: String?
        if arguments.first == "--version" || arguments.first == "-V" { return .version(ProductVersion.line) }
        if let first = arguments.first, !first.hasPrefix("-") {
            subcommand = first
            arguments.removeFirst()
            if first == "revoke-user" {
                guard let user = arguments.first, !user.hasPrefix("-") else { throw ConfigurationError("revoke-user needs a user id: session-fcgi revoke-user USER [--redis-url URL] [--redis-password-file PATH] ...") }
                subject = user
                arguments.removeFirst()
            } else if first == "hash-password" {
                return .hashPassword(iterations: try hashIterations(arguments))
            } else if first != "check-config" {
                throw ConfigurationError("unknown command '\(first)' (see --help)")
            }
        }
        var config = AppConfiguration()
        for option in options {
            guard let value = environment[option.environment] else { continue }
            // Named as the operator set it (in /etc/default/session-fcgi, say), not as the flag.
            do { try option.apply(&config, value) } catch {
                throw ConfigurationError("\(option.environment) (\(option.flag)): " + error.message.replacingPrefix(option.flag + ": "))
            }
        }
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--help" || argument == "-h" { return .help(helpText) }
            if argument == "--version" || argument == "-V" { return .version(ProductVersion.line) }
            var flag = argument
            var value: String?
            if let equals = argument.firstIndex(of: "=") {
                flag = String(argument[..<equals])
                value = String(argument[argument.index(after: equals)...])
            }
            guard let option = options.first(where: { $0.flag == flag }) else {
                if let near = nearestFlag(to: flag) { throw ConfigurationError("unknown option '\(flag)'; did you mean \(near)? (see --help)") }
                throw ConfigurationError("unknown option '\(flag)' (see --help)")
            }
            if value == nil {
                guard index < arguments.count else { throw ConfigurationError("\(flag) needs a value") }
                value = arguments[index]
                index += 1
            }
            try option.apply(&config, value ?? "")
        }
        config.session.maxAgeSeconds = config.absoluteTimeoutSeconds
        try config.validate()
        if config.idleTimeoutSeconds > config.absoluteTimeoutSeconds {
            config.warnings.append("--idle-timeout \(config.idleTimeoutSeconds) is longer than --absolute-timeout \(config.absoluteTimeoutSeconds): "
                                   + "every session ends at the absolute timeout, however active")
        }
        let standby = config.server.threads - min(config.server.activeThreads, config.server.threads)
        if config.usersFile != nil && standby < 2 {
            config.warnings.append("--threads \(config.server.threads) with --active-threads \(config.server.activeThreads) leaves \(standby) standby workers: "
                                   + "a login's password check then holds the last one (or an active one) for its hash; give --threads at least --active-threads + 2")
        } else if config.usersFile != nil && config.loginConcurrency > standby - 1 {
            config.warnings.append("--login-concurrency \(config.loginConcurrency) is more than --threads \(config.server.threads) allows "
                                   + "(\(standby - 1) of \(standby) standby workers): \(standby - 1) password checks run at once")
        }
        switch subcommand {
        case "revoke-user": return .revokeUser(subject ?? "", config)
        case "check-config": return .checkConfig(config)
        default: return .serve(config)
        }
    }

    /// The option a mistyped `flag` most likely meant: at most two edits away (a letter missed,
    /// added, changed or two swapped), or nil.
    static func nearestFlag(to flag: String) -> String? {
        let typed = Array(flag)
        let scored = options.map { ($0.flag, editDistance(typed, Array($0.flag))) }.filter { $0.1 <= 2 }
        return scored.min { $0.1 < $1.1 }?.0
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
    /// neighbouring characters.
    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
                }
            }
        }
        return table[a.count][b.count]
    }

    /// `hash-password`'s one option, `--iterations N` (or `=N`): more than the default costs
    /// every login of that user as much more CPU (OWASP's figure for PBKDF2-SHA256: 600000).
    static func hashIterations(_ arguments: [String]) throws(ConfigurationError) -> Int {
        var value: String?
        if arguments.count == 2, arguments[0] == "--iterations" { value = arguments[1] }
        if arguments.count == 1, arguments[0].hasPrefix("--iterations=") { value = String(arguments[0].dropFirst("--iterations=".count)) }
        if arguments.isEmpty { return PasswordHash.defaultIterations }
        guard let value, let iterations = Int(value), PasswordHash.iterationRange.contains(iterations) else {
            throw ConfigurationError("hash-password takes only --iterations N (\(PasswordHash.iterationRange.lowerBound)...\(PasswordHash.iterationRange.upperBound); default \(PasswordHash.defaultIterations))")
        }
        return iterations
    }

    /// Rules that involve several options.
    func validate() throws(ConfigurationError) {
        if let violation = session.prefixViolation {
            throw ConfigurationError("--cookie-name \(session.cookieName): \(violation)")
        }
        if keyPrefix == userKeyPrefix {
            throw ConfigurationError("--key-prefix and --user-key-prefix must differ")
        }
        if redisURLCredentialsAreOneWord && redisPasswordFile != nil {
            // `redis://session-store@host` with a password file means the ACL user to its
            // writer (as redis-py reads it), but is read as a password, which the file replaces:
            // Redis would then refuse the default user with no word of the name.
            throw ConfigurationError("--redis-url: the word before '@' has no colon, so it is read as a password, which --redis-password-file replaces; for an ACL user name write it with a colon (redis://NAME:@host:port), and keep a password in the file only")
        }
        if redisTLSOptionsGiven && redis.tls == nil {
            throw ConfigurationError("--redis-tls-... options need a rediss://, rediss-cluster:// or rediss-sentinel:// --redis-url")
        }
        if redisSentinelPassword != nil || redisSentinelUsername != nil {
            guard case .sentinel = redis.topology else {
                throw ConfigurationError("--redis-sentinel-password-file and --redis-sentinel-user need a redis-sentinel:// or rediss-sentinel:// --redis-url")
            }
            if redisSentinelUsername != nil && redisSentinelPassword == nil {
                throw ConfigurationError("--redis-sentinel-user needs --redis-sentinel-password-file")
            }
        }
        if redisTLS.keyFile != nil && redisTLS.certificateFile == nil {
            throw ConfigurationError("--redis-tls-key-file needs --redis-tls-cert-file")
        }
        if let touchIntervalGiven, touchIntervalGiven > SessionTimeouts.maximumTouchInterval(idleSeconds: idleTimeoutSeconds) {
            throw ConfigurationError("--touch-interval (\(touchIntervalGiven)) must be at most half of --idle-timeout (\(idleTimeoutSeconds))")
        }
        if redisWaitTimeoutMilliseconds >= redisCommandTimeoutMilliseconds {
            throw ConfigurationError("--redis-wait-timeout-ms (\(redisWaitTimeoutMilliseconds)) must be below --redis-timeout-ms (\(redisCommandTimeoutMilliseconds))")
        }
    }

    /// The `--help` text: every option with its environment variable.
    public static var helpText: String {
        var text = """
            session-fcgi: a FastCGI responder keeping HTTP sessions in Redis.

            Usage: session-fcgi [OPTIONS]
              Under spawn-fcgi:  spawn-fcgi -a 127.0.0.1 -p 9001 -- session-fcgi [OPTIONS]
              Standalone:        session-fcgi --listen 127.0.0.1:9001 [OPTIONS]
              Operators:         session-fcgi revoke-user USER [OPTIONS]          end every session of USER (the instances'
                                                                                  Redis options: --redis-url, --redis-password-file, ...)
                                 session-fcgi hash-password [--iterations N] < password
                                                                                  print a users-file hash (PBKDF2-SHA256, 100000
                                                                                  iterations unless N; OWASP: 600000)
                                 session-fcgi check-config [OPTIONS]              validate a configuration, reach Redis, serve nothing

            Options (each may also be set by the environment variable shown; flags win):

            """
        for option in options {
            text += "  \(option.flag) \(option.valueName)\n      \(option.help)\n      env: \(option.environment)\n"
        }
        text += "  --help\n      show this text\n  --version\n      show the release and the hiredis it was built with\n"
        return text
    }
}

private extension String {
    /// This string without `prefix` at its start (unchanged when it does not start with it).
    func replacingPrefix(_ prefix: String) -> String {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : self
    }
}
