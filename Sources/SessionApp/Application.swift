import FastCGIServer
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
        log.info("session store at \(configuration.redis), key prefix \(configuration.keyPrefix)")
        for warning in configuration.warnings { log.warning(warning) }
        var users: UsersFile?
        if let path = configuration.usersFile {
            let text: String
            do {
                text = try ConfigurationFile.text(at: path)
            } catch {
                log.error("users file: \(error)")
                throw .cannotReadUsers(error.description)
            }
            users = UsersFile(text: text)
            log.info("login enabled for \(users?.hashes.count ?? 0) users")
        }
        let server = FastCGIServer(configuration: configuration.server, log: log)
        let configuration = self.configuration
        let loadedUsers = users
        do {
            try server.run { SessionResponder(configuration: configuration, log: log, users: loadedUsers) }
        } catch {
            log.error("\(error)")
            throw .server(error)
        }
    }
}

/// Why the application could not run.
public enum ApplicationError: Error, Equatable, Sendable, CustomStringConvertible {
    case cannotOpenLog(String)
    case cannotReadUsers(String)
    case server(FastCGIServerError)

    public var description: String {
        switch self {
        case .cannotOpenLog(let path): return "cannot open log file \(path)"
        case .cannotReadUsers(let why): return "users file: \(why)"
        case .server(let error): return error.description
        }
    }
}
