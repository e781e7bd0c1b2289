import Glibc
import SessionCore
import SessionRedis

/// The `session-fcgi` command: parse, build, run. Returns the process exit status.
public enum CommandLineTool {
    public static func main(arguments: [String]) -> Int32 {
        // A peer that resets a connection must be an error to handle, not a signal that ends
        // check-config or revoke-user without a word (OpenSSL writes with write(2)).
        signal(SIGPIPE, SIG_IGN)
        do {
            switch try AppConfiguration.parse(arguments: Array(arguments.dropFirst()), environment: processEnvironment()) {
            case .help(let text):
                writeStandardOutput(text)
                return 0
            case .version(let line):
                writeStandardOutput(line + "\n")
                return 0
            case .serve(let configuration):
                try Application(configuration: configuration).run()
                return 0
            case .revokeUser(let user, let configuration):
                return revoke(user: user, configuration: configuration)
            case .hashPassword(let iterations):
                return hashPassword(iterations: iterations)
            case .checkConfig(let configuration):
                return ConfigurationCheck(configuration: configuration).run()
            }
        } catch let error as ConfigurationError {
            writeStandardError("session-fcgi: \(error)\n")
            return 64
        } catch {
            writeStandardError("session-fcgi: \(error)\n")
            return 1
        }
    }

    /// `revoke-user`: ends every session of the user in Redis, on every instance at once.
    static func revoke(user: String, configuration: AppConfiguration) -> Int32 {
        let manager: SessionManager<RedisSessionStore>
        do {
            manager = try configuration.makeManager()
        } catch {
            writeStandardError("session-fcgi: \(error)\n")
            return 64
        }
        do {
            let ended = try manager.revokeAll(of: user)
            writeStandardOutput("revoked every session of \(user) (\(ended) ended)\n")
            if configuration.encryptionKeys.isEmpty {
                // With encryption at rest a user's sessions are filed under a pseudonym that only
                // the keys give: without them this finds none of those (it may still find older
                // ones filed in clear, so the count says nothing either way).
                writeStandardError("session-fcgi: note: without --encryption-keys-file this finds only sessions filed in clear; if the instances run with --encryption-keys-file, run it again with the same file\n")
            }
            // A revocation no replica took can be undone by a failover (one under way when it
            // ran, or one soon after): scripts that check the exit status must not read it as
            // done. Running the command again is safe.
            let unsure: String?
            switch Result(catching: { () throws(SessionStoreError) in try manager.store.confirmWrites() }) {
            case .success(.unconfirmed(let required, let acknowledged)):
                unsure = "\(acknowledged) of \(required) replicas confirmed it in time"
            case .failure(let error):
                unsure = "whether a replica took it is unknown (\(error))"
            case .success:
                unsure = nil
            }
            if let unsure {
                writeStandardError("session-fcgi: the revocation is not confirmed: \(unsure); a failover now could undo it: run the command again once Redis is settled (exit 75)\n")
                return 75
            }
            return 0
        } catch {
            writeStandardError("session-fcgi: \(error)\n")
            return error == .invalidUserID ? 64 : 69
        }
    }

    /// `hash-password`: the first line of standard input, exactly as its bytes are (a trailing
    /// CR LF or LF removed), hashed for the users file. Bytes that are not UTF-8 are refused,
    /// not replaced: a login form can only ever send UTF-8, and replacing would make different
    /// passwords hash alike. On a terminal it prompts on standard error, reads without echo
    /// (the password never shows on screen or in a scroll-back) and asks twice, so a typo cannot
    /// silently become the password; piped, it reads one line and prints only the hash.
    static func hashPassword(iterations: Int) -> Int32 {
        let line: [UInt8]
        if isatty(0) == 1 {
            guard let first = readPasswordWithoutEcho(prompt: "Password: ") else { return 65 }
            guard !first.isEmpty else {
                writeStandardError("session-fcgi: the password is empty\n")
                return 64
            }
            guard let again = readPasswordWithoutEcho(prompt: "Again: ") else { return 65 }
            guard first == again else {
                writeStandardError("session-fcgi: the two passwords differ; nothing was printed\n")
                return 65
            }
            line = first
        } else {
            guard let read = readPasswordLine() else { return 65 }
            line = read
        }
        guard !line.isEmpty else {
            writeStandardError("session-fcgi: give the password on standard input\n")
            return 64
        }
        guard let text = String(validating: line, as: UTF8.self) else {
            writeStandardError("session-fcgi: the password is not valid UTF-8\n")
            return 65
        }
        if text.count < 15 {
            writeStandardError("session-fcgi: warning: the password has \(text.count) characters; NIST SP 800-63B asks for at least 15 when a password alone logs in\n")
        }
        guard let hash = PasswordHash.make(line, iterations: iterations) else {
            writeStandardError("session-fcgi: could not hash the password\n")
            return 1
        }
        writeStandardOutput(hash.encoded + "\n")
        return 0
    }

    /// One line of standard input without its line ending; `nil` (with the reason on standard
    /// error) when it is longer than a login accepts.
    private static func readPasswordLine() -> [UInt8]? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while read(0, &byte, 1) == 1, byte != UInt8(ascii: "\n") {
            line.append(byte)
            if line.count > 1025 {
                writeStandardError("session-fcgi: the password is longer than 1024 bytes\n")
                return nil
            }
        }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        guard line.count <= 1024 else {
            writeStandardError("session-fcgi: the password is longer than 1024 bytes\n")
            return nil
        }
        return line
    }

    /// Echo off, `prompt` on standard error, then a line read from the terminal (echo restored
    /// afterwards, also when the line is refused, and when Ctrl-C, SIGTERM or SIGHUP ends the
    /// program at the prompt).
    private static func readPasswordWithoutEcho(prompt: String) -> [UInt8]? {
        var saved = termios()
        let canSilence = tcgetattr(0, &saved) == 0
        if canSilence {
            terminalBeforePrompt = saved
            for stop in [SIGINT, SIGTERM, SIGHUP] { signal(stop, restoreTerminalAndStop) }
            var silent = saved
            silent.c_lflag &= ~tcflag_t(ECHO)
            silent.c_lflag |= tcflag_t(ECHONL)
            _ = tcsetattr(0, TCSAFLUSH, &silent)
        }
        defer {
            if canSilence {
                _ = tcsetattr(0, TCSAFLUSH, &saved)
                for stop in [SIGINT, SIGTERM, SIGHUP] { signal(stop, SIG_DFL) }
            }
        }
        writeStandardError(prompt)  // only once echo is off: whatever is typed after it stays unseen
        return readPasswordLine()
    }

    /// The terminal's settings before a password prompt turned echo off, for the signal
    /// handler below (written before the handler is installed, read only by it).
    nonisolated(unsafe) static var terminalBeforePrompt = termios()

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

/// Puts echo back and ends the program as the signal would have (tcsetattr, signal and raise
/// are async-signal-safe).
private func restoreTerminalAndStop(_ number: Int32) {
    _ = tcsetattr(0, TCSANOW, &CommandLineTool.terminalBeforePrompt)
    signal(number, SIG_DFL)
    raise(number)
}
