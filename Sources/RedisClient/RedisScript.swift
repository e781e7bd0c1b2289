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
}

/// One call of a script in a pipeline: the script, and its keys and arguments (the key count
/// first, as `EVALSHA` takes them).
public struct RedisScriptCall: Sendable {
    public let script: RedisScript
    /// `numkeys`, the keys, then the other arguments.
    public let arguments: RedisCommand
    /// The key that decides the node (the first key).
    public let routingKey: String?

    public init(_ script: RedisScript, keyCount: Int, routingKey: String? = nil, _ addArguments: (inout RedisCommand) -> Void) {
        self.script = script
        self.routingKey = routingKey
        var arguments = RedisCommand()
        arguments.append(keyCount)
        addArguments(&arguments)
        self.arguments = arguments
    }

    func command(_ name: String, _ body: String) -> RedisCommand {
        var command = RedisCommand(reservingBytes: body.utf8.count + arguments.bytes.count + 16, arguments: arguments.count + 2)
        command.append(name)
        command.append(body)
        command.append(contentsOf: arguments)
        return command
    }
}

extension RedisConnection {
    /// Runs `script` with `keyCount` keys; `addArguments` appends the keys, then the other
    /// arguments, to the command. One round trip (two only right after the server lost its
    /// script cache); a server error reply other than `NOSCRIPT` is thrown as `.server`.
    /// Builds the command in the connection's reused buffer: this is the hot path.
    public func run(_ script: RedisScript, keyCount: Int, _ addArguments: (inout RedisCommand) -> Void) throws(RedisError) -> RedisReply {
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

    /// Runs `script` with these keys and arguments (see `run(_:keyCount:_:)`).
    public func run(_ script: RedisScript, keys: [String], arguments: [String]) throws(RedisError) -> RedisReply {
        try run(script, keyCount: keys.count) { command in
            for key in keys { command.append(key) }
            for argument in arguments { command.append(argument) }
        }
    }

    /// Runs several script calls in one pipelined round trip and returns their replies in
    /// order (server errors stay in the replies as `.error`). Calls answered `NOSCRIPT` did not
    /// run: they alone are sent again, as `EVAL`, in a second round trip.
    public func runPipelined(_ calls: [RedisScriptCall]) throws(RedisError) -> [RedisReply] {
        guard !calls.isEmpty else { return [] }
        var replies = try pipeline(calls.map { $0.command("EVALSHA", $0.script.sha1) })
        let missing = replies.indices.filter { replies[$0].serverError?.code == "NOSCRIPT" }
        guard !missing.isEmpty else { return replies }
        let retried = try pipeline(missing.map { calls[$0].command("EVAL", calls[$0].script.source) })
        for (index, reply) in zip(missing, retried) { replies[index] = reply }
        return replies
    }
}
