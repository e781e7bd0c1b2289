import Glibc
import RedisClient
import SessionCore
import SessionRedis

/// The `session-fcgi` command: parse, build, run. Returns the process exit status.
public enum CommandLineTool {
    public static func main(arguments: [String]) -> Int32 {
        do {
            switch try AppConfiguration.parse(arguments: Array(arguments.dropFirst()), environment: processEnvironment()) {
            case .help(let text):
                writeStandardOutput(text)
                return 0
            case .serve(let configuration):
                try Application(configuration: configuration).run()
                return 0
            case .revokeUser(let user, let configuration):
                return revoke(user: user, configuration: configuration)
            case .hashPassword:
                guard let password = readLine(strippingNewline: true), !password.isEmpty else {
                    writeStandardError("session-fcgi: give the password on standard input\n")
                    return 64
                }
                guard let hash = PasswordHash.make(password) else {
                    writeStandardError("session-fcgi: could not hash the password\n")
                    return 1
                }
                writeStandardOutput(hash + "\n")
                return 0
            }
        } catch let error as ConfigurationError {
            writeStandardError("session-fcgi: \(error)\n")
            return 64
        } catch {
            writeStandardError("session-fcgi: \(error)\n")
            return 1
        }
    }

    /// `revoke-user`: moves the user's generation on in Redis; every instance then refuses the
    /// user's existing sessions at their next request.
    static func revoke(user: String, configuration: AppConfiguration) -> Int32 {
        let store = RedisSessionStore(connection: RedisConnection(endpoint: configuration.redisEndpoint),
                                      keyPrefix: configuration.keyPrefix, userKeyPrefix: configuration.userKeyPrefix)
        do {
            let generation = try SessionManager(store: store).revokeAll(of: user)
            writeStandardOutput("revoked every session of \(user) (generation \(generation))\n")
            return 0
        } catch {
            writeStandardError("session-fcgi: \(error)\n")
            return error == .invalidUserID ? 64 : 69
        }
    }

    /// The process environment as a dictionary (no Foundation).
    static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var cursor: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = environ
        while let entry = cursor.pointee {
            let pair = String(cString: entry)
            if let equals = pair.firstIndex(of: "=") {
                result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            cursor += 1
        }
        return result
    }

    static func writeStandardOutput(_ text: String) { write(fd: 1, text) }
    static func writeStandardError(_ text: String) { write(fd: 2, text) }

    private static func write(fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { bytes in _ = Glibc.write(fd, bytes.baseAddress, bytes.count) }
    }
}
