/// A user name and password for a test server (kept in memory, never on a command line).
public struct RedisTestCredentials: Sendable {
    public let username: String
    public let password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }
}
