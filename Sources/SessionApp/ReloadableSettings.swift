import Synchronization
import SessionCore

/// What SIGHUP reloads without a restart: the users file, the cookie signing keys, the
/// trusted-login keys and the admin token (from their files). Everything else needs a restart.
struct ReloadableSettings: Sendable {
    var users: UsersFile?
    var cookies: SessionCookieCodec
    var adminToken: String?
    /// Keys that verify trusted-login assertions; empty: the route is off.
    var trustedLoginKeys: [[UInt8]] = []
    /// Why the trusted-login keys file could not be used (trusted login is then off).
    var trustedLoginProblem: String?
}

/// The current `ReloadableSettings`, shared by every worker. Workers keep a copy and compare
/// one atomic generation number per request, so the hot path takes no lock; a reload swaps the
/// value under a lock and moves the generation on. A request in progress finishes with the
/// settings it started with.
final class SettingsCell: Sendable {
    private let generation = Atomic<Int>(0)
    private let value: Locked<ReloadableSettings>

    init(_ settings: ReloadableSettings) {
        value = Locked(settings)
    }

    /// The settings now in use.
    var current: ReloadableSettings { value.withLock { $0 } }

    func replace(with settings: ReloadableSettings) {
        value.withLock { $0 = settings }
        generation.add(1, ordering: .releasing)
    }

    /// Refreshes `cached` if a reload happened since it was taken.
    func refresh(_ cached: inout (generation: Int, settings: ReloadableSettings)) {
        let current = generation.load(ordering: .acquiring)
        guard current != cached.generation else { return }
        cached = (current, value.withLock { $0 })
    }
}

extension AppConfiguration {
    /// The reloadable settings as the files hold them now. Throws when a file named in the
    /// configuration cannot be read or holds something unusable (the old settings then stay).
    func loadReloadableSettings() throws(ConfigurationError) -> (settings: ReloadableSettings, problems: [String]) {
        var copy = self
        if let file = adminTokenFile { copy.adminToken = try SecretRules.adminToken(file: file, into: &copy) }
        if let file = cookieSigningKeysFile { copy.cookieSigningKeys = try SecretRules.signingKeys(file: file, into: &copy) }
        var users: UsersFile?
        var problems: [String] = []
        if let path = usersFile {
            do {
                users = UsersFile(text: try ConfigurationFile.text(at: path))
                problems = users?.problems ?? []
            } catch {
                // A problem like a refused line: the caller decides (at start: stop; on SIGHUP:
                // keep the previous users, apply the other files).
                problems = ["cannot be read: \(error)"]
            }
        }
        let trusted = loadTrustedLoginKeys()
        return (ReloadableSettings(users: users, cookies: copy.makeCookieCodec(), adminToken: copy.adminToken,
                                   trustedLoginKeys: trusted.keys, trustedLoginProblem: trusted.problem), problems)
    }

    /// The trusted-login keys as their file holds them now. Fails closed: a file that cannot be
    /// used gives no keys (trusted login off) and says why, so that a reload meant to withdraw a
    /// leaked key never leaves it working (a key replaced by a short one, or
    /// the file emptied, kept the old key in use).
    func loadTrustedLoginKeys() -> (keys: [[UInt8]], problem: String?) {
        guard let file = trustedLoginKeysFile else { return (trustedLoginKeys.map { Array($0.utf8) }, nil) }
        var scratch = self
        do {
            return (try SecretRules.trustedLoginKeys(file: file, into: &scratch).map { Array($0.utf8) }, nil)
        } catch {
            return ([], error.description)
        }
    }
}
