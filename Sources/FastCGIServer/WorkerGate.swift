import Glibc

/// How many workers take requests at once (`FastCGIServerConfiguration.activeThreads`): a
/// counting semaphore whose permits a worker holds while it waits in epoll and answers a
/// batch's prompt requests. Fewer workers waiting in epoll means that requests arriving
/// together are taken together (one wake-up, one Redis round trip for several requests)
/// instead of each waking a thread of its own. A worker about to serve a request that may
/// block (a login's password hash, a route of several round trips) hands its permit on, so a
/// standby worker takes its place and a slow route never holds the hot routes back; it takes a
/// permit again when done, and stands by until one is free.
final class WorkerGate: @unchecked Sendable {
    // @unchecked: the semaphore is made once, never freed (it lives as long as the process),
    // and sem_wait/sem_post are thread-safe.
    private let semaphore: UnsafeMutablePointer<sem_t>

    init(permits: Int) {
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, UInt32(clamping: max(1, permits)))
    }

    /// Waits for a permit.
    func enter() {
        while sem_wait(semaphore) != 0 && errno == EINTR {}
    }

    /// Gives a permit back (wakes one standby worker, if any).
    func leave() {
        sem_post(semaphore)
    }
}
