import FastCGIServer
import RedisClient
import SessionRedis
import Glibc

/// Builds the FastCGI server and the per-thread responders from one configuration, and runs it.
public struct Application: Sendable {
    public let configuration: AppConfiguration

    public init(configuration: AppConfiguration) {
        self.configuration = configuration
    }

    /// Serves until SIGTERM or SIGINT.
    public func run() throws(ApplicationError) {
        let log: ServerLog
        if let path = configuration.logFile {
            guard let fileLog = ServerLog(path: path, minimumLevel: configuration.logLevel) else {
                throw .cannotOpenLog(path)
            }
            log = fileLog
        } else {
            log = ServerLog(minimumLevel: configuration.logLevel)
        }
        log.info("session store at \(configuration.redisConfiguration), key prefix \(configuration.keyPrefix); \(configuration.atRestSummary)")
        for warning in configuration.warnings { log.warning(warning) }
        if configuration.redisConfiguration.tls?.insecure == true {
            log.warning("--redis-tls-insecure: Redis certificates and names are NOT verified; anyone on the path can read and change sessions")
        }
        do {
            try RedisClient(configuration: configuration.redisConfiguration).validateTLS()
        } catch {
            log.error("Redis TLS: \(error)")
            throw .redisTLS(error.description)
        }
        let layout: RedisSessionLayout
        do {
            layout = try configuration.makeLayout()
        } catch {
            log.error("\(error)")
            throw .atRest(error.description)
        }
        let users = try loadUsers(log: log)
        let server = FastCGIServer(configuration: configuration.server, log: log)
        let configuration = self.configuration
        let cookies = configuration.makeCookieCodec()
        do {
            try server.run {
                SessionResponder(configuration: configuration, store: configuration.makeStore(layout: layout), cookies: cookies, users: users, log: log,
                                 rotationRetry: configuration.rotationRetry)
            }
        } catch {
            log.error("\(error)")
            throw .server(error)
        }
    }

    /// The users file, with every refused line logged; a file that cannot be read stops the
    /// program with a line in the log (spawn-fcgi discards standard error).
    private func loadUsers(log: ServerLog) throws(ApplicationError) -> UsersFile? {
        guard let path = configuration.usersFile else { return nil }
        let text: String
        do {
            text = try ConfigurationFile.text(at: path)
        } catch {
            log.error("users file: \(error)")
            throw .cannotReadUsers(error.description)
        }
        let users = UsersFile(text: text)
        for problem in users.problems { log.warning("users file \(path): \(problem)") }
        log.info("login enabled for \(users.hashes.count) users")
        if ConfigurationFile.isReadableByOthers(path) { log.warning("users file \(path) is readable by every local user; chmod 640 it") }
        return users
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
        case .cannotOpenLog(let path): return "cannot open log file \(path)"
        case .cannotReadUsers(let why): return "users file: \(why)"
        case .redisTLS(let why): return "Redis TLS: \(why)"
        case .atRest(let why): return why
        case .server(let error): return error.description
        }
    }
}
