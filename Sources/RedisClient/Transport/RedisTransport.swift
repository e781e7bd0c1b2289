/// A byte stream to one Redis server: a TCP or Unix socket, or TLS over TCP. Every read and
/// write is bounded by the command timeout given at connect (`SO_RCVTIMEO`/`SO_SNDTIMEO`), so a
/// server that stops answering costs at most that long per call. Not thread-safe: owned by one
/// `RedisConnection`, on one thread.
protocol RedisTransport: AnyObject {
    /// Writes all of `bytes`, or throws (nothing more can be sent on this transport then).
    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(RedisError)
    /// Reads at least one byte into `buffer` and returns how many; throws on end of stream,
    /// timeout or error.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(RedisError) -> Int
    /// For an idle connection: whether nothing arrived and the peer did not close (a server
    /// that restarted or closed an idle connection is noticed before the next command).
    func isIdleAndHealthy() -> Bool
    /// Closes the stream; idempotent.
    func close()
}
