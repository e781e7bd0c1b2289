import Glibc

/// Starts detached threads running a Swift closure.
enum WorkerThread {
    /// Stack per worker: the deepest path (a request with its Redis round trips and a 16 KiB
    /// scratch buffer) uses a fraction of it.
    static let stackSize = 512 * 1024

    static func start(_ body: @escaping @Sendable () -> Void) throws(FastCGIServerError) {
        let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, stackSize)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var thread = pthread_t()
        let result = pthread_create(&thread, &attributes, workerThreadEntry, box)
        if result != 0 {
            Unmanaged<ThreadBody>.fromOpaque(box).release()
            throw .cannotStartThread(result)
        }
    }
}

/// A closure carried across `pthread_create`.
private final class ThreadBody: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// The C entry point of every worker thread: a global function, not a closure, so it carries
/// no actor isolation (see FIELD-NOTES: closures from top-level code die with SIGILL).
private func workerThreadEntry(_ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    guard let argument else { return nil }
    let box = Unmanaged<ThreadBody>.fromOpaque(argument).takeRetainedValue()
    box.body()
    return nil
}
