/// A Lua script run by `EVALSHA`, falling back to `EVAL` once when the server answers
/// `NOSCRIPT` (after a restart or `SCRIPT FLUSH`), which also loads it again.
public struct RedisScript: Sendable {
    /// The Lua source.
    public let source: String
    /// Lower-case hex SHA-1 of the source, as Redis names scripts.
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = SHA1.hexDigest(Array(source.utf8))
    }

    /// Builds the `EVALSHA` command for these keys and arguments.
    public func evalSHACommand(keys: [String], arguments: [String]) -> RedisCommand {
        command(name: "EVALSHA", body: sha1, keys: keys, arguments: arguments)
    }

    /// Builds the `EVAL` command (full source) for these keys and arguments.
    public func evalCommand(keys: [String], arguments: [String]) -> RedisCommand {
        command(name: "EVAL", body: source, keys: keys, arguments: arguments)
    }

    private func command(name: String, body: String, keys: [String], arguments: [String]) -> RedisCommand {
        var command = RedisCommand(name, body)
        command.append(keys.count)
        for key in keys { command.append(key) }
        for argument in arguments { command.append(argument) }
        return command
    }
}

extension RedisConnection {
    /// Runs `script` with `keyCount` keys; `addArguments` appends the keys, then the other
    /// arguments, to the command. Same round-trip and error rules as `run(_:keys:arguments:)`,
    /// without intermediate arrays (this is the hot path of every session request).
    public func run(_ script: RedisScript, keyCount: Int, _ addArguments: (inout RedisCommand) -> Void) throws(RedisError) -> RedisReply {
        // The connection's scratch command: reused, so building it allocates nothing.
        var command = takeScratchCommand()
        command.append("EVALSHA")
        command.append(script.sha1)
        command.append(keyCount)
        addArguments(&command)
        let sent = Result { () throws(RedisError) in try send(command) }
        returnScratchCommand(command)
        let reply = try sent.get()
        if let error = reply.serverError {
            guard error.code == "NOSCRIPT" else { throw .server(error) }
            var full = RedisCommand(reservingBytes: script.source.utf8.count + 160, arguments: 8)
            full.append("EVAL")
            full.append(script.source)
            full.append(keyCount)
            addArguments(&full)
            let retried = try send(full)
            if let error = retried.serverError { throw .server(error) }
            return retried
        }
        return reply
    }

    /// Runs `script` in one round trip (two only right after the server lost its script cache).
    /// A server error reply other than `NOSCRIPT` is thrown as `.server`.
    public func run(_ script: RedisScript, keys: [String], arguments: [String]) throws(RedisError) -> RedisReply {
        try run(script, keyCount: keys.count) { command in
            for key in keys { command.append(key) }
            for argument in arguments { command.append(argument) }
        }
    }
}
