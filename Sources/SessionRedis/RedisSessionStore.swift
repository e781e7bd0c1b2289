import RedisClient
import SessionCore

/// A `SessionStore` keeping each session as a Redis hash `<prefix><id>` with a TTL.
///
/// Every operation is one Lua script called by SHA on one key: atomic, one round trip, and
/// valid on Redis Cluster (a single key always lives on one node). Owns its connection, so it
/// is used by one thread (one store per worker thread).
public final class RedisSessionStore: SessionStore {
    public let connection: RedisConnection
    /// Prepended to every session id to form its key (`sid_`).
    public let keyPrefix: String

    public init(connection: RedisConnection, keyPrefix: String = "sid_") {
        self.connection = connection
        self.keyPrefix = keyPrefix
    }

    /// The Redis key of a session.
    public func key(for id: SessionID) -> String {
        keyPrefix + id.rawValue
    }

    public func increment(_ field: String, by amount: Int64, in id: SessionID, idleTimeoutSeconds: Int) throws(SessionStoreError) -> Int64? {
        let prefix = keyPrefix
        let reply = try run(Self.incrementScript) { command in
            command.append(concatenating: prefix, id.rawValue)
            command.append(field)
            command.append(amount)
            command.append(idleTimeoutSeconds)
        }
        switch reply {
        case .integer(let value): return value
        case .null: return nil
        default: throw .failed("increment script returned an unexpected reply")
        }
    }

    public func create(_ id: SessionID, fields: [(name: String, value: String)], idleTimeoutSeconds: Int) throws(SessionStoreError) -> Bool {
        let prefix = keyPrefix
        let reply = try run(Self.createScript) { command in
            command.append(concatenating: prefix, id.rawValue)
            command.append(idleTimeoutSeconds)
            for field in fields {
                command.append(field.name)
                command.append(field.value)
            }
        }
        guard let created = reply.integer else { throw .failed("create script returned an unexpected reply") }
        return created == 1
    }

    public func checkHealth() throws(SessionStoreError) {
        do {
            let reply = try connection.send(RedisCommand("PING"))
            guard reply.text == "PONG" else { throw SessionStoreError.failed("PING answered \(reply)") }
        } catch let error as RedisError {
            throw Self.storeError(error)
        } catch let error as SessionStoreError {
            throw error
        } catch {
            throw .failed("\(error)")
        }
    }

    /// Runs a one-key session script; `addArguments` appends the key first.
    private func run(_ script: RedisScript, _ addArguments: (inout RedisCommand) -> Void) throws(SessionStoreError) -> RedisReply {
        do {
            return try connection.run(script, keyCount: 1, addArguments)
        } catch {
            throw Self.storeError(error)
        }
    }

    private static func storeError(_ error: RedisError) -> SessionStoreError {
        switch error {
        case .connectFailed, .timedOut, .connectionLost: return .unavailable(error.description)
        case .server(let serverError) where serverError.code == "LOADING" || serverError.code == "BUSY"
            || serverError.code == "MASTERDOWN" || serverError.code == "TRYAGAIN" || serverError.code == "CLUSTERDOWN":
            return .unavailable(error.description)
        case .server, .unexpectedReply, .invalidCommand: return .failed(error.description)
        }
    }

    /// KEYS[1] session key; ARGV field, amount, ttl. Returns the new value, or nil (and writes
    /// nothing) when the session does not exist.
    static let incrementScript = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 0 then return false end
        local value = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
        redis.call('EXPIRE', KEYS[1], ARGV[3])
        return value
        """)

    /// KEYS[1] session key; ARGV ttl, then field/value pairs. Returns 1 if created, 0 if the key
    /// already existed (then nothing is written).
    static let createScript = RedisScript("""
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        redis.call('HSET', KEYS[1], unpack(ARGV, 2))
        redis.call('EXPIRE', KEYS[1], ARGV[1])
        return 1
        """)
}
