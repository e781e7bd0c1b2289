import CHiredis

/// Parses RESP bytes into replies with hiredis's own reader, without a server.
/// Not thread-safe: use one reader per thread.
public final class RedisReplyReader {
    private let builder = RedisReplyBuilder()
    private let reader: UnsafeMutablePointer<redisReader>

    /// Returns `nil` when hiredis cannot allocate a reader.
    public init?() {
        guard let reader = builder.makeReader() else { return nil }
        self.reader = reader
    }

    deinit { redisReaderFree(reader) }

    /// Appends bytes received from a server.
    public func feed(_ bytes: [UInt8]) throws(RedisError) {
        let status = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { redisReaderFeed(reader, $0.baseAddress, $0.count) }
        }
        if status != REDIS_OK { throw .connectionLost("reader refused input") }
    }

    /// The next complete reply, or `nil` if more bytes are needed.
    /// Throws `.connectionLost` on a protocol error (the stream cannot be resumed after one).
    public func next() throws(RedisError) -> RedisReply? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
            throw .connectionLost("protocol error")
        }
        guard raw != nil else { return nil }
        guard let reply = builder.takeReply() else { throw .connectionLost("protocol error: a reply without a value") }
        return reply
    }
}
