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
        var users: UsersFile?
        if let path = configuration.usersFile {
            guard let text = readTextFile(path) else { throw .cannotReadUsers(path) }
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
        case .cannotReadUsers(let path): return "cannot read users file \(path)"
        case .server(let error): return error.description
        }
    }
}

/// The whole file as UTF-8 text, or nil.
func readTextFile(_ path: String) -> String? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let read = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
        if read == 0 { break }
        bytes.append(contentsOf: chunk[0..<read])
        if bytes.count > 16 << 20 { return nil }
    }
    return String(validating: bytes, as: UTF8.self)
}
