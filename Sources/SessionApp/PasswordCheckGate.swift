import CLinux
import Glibc
import Synchronization

/// How many password checks an instance runs at once (`--login-concurrency`), how many logins
/// may wait for one, and for how long (`--login-wait-ms`). A check is tens to hundreds of
/// milliseconds of CPU by design (PBKDF2), and every refused login costs one, so strangers can
/// send them faster than any host hashes. Unbounded, they took every worker thread, left none
/// for `/count`, `/me` and `/auth`, and outlasted nginx's read timeout, which then marked the
/// instances failed for every route. With the gate a flood holds at most `permits` cores and
/// `admitted` worker threads; every other login gets a prompt 503 with `Retry-After`.
final class PasswordCheckGate: @unchecked Sendable {
    // @unchecked: the semaphore is made once, never freed (a gate lives as long as the
    // process, or a test), and sem_clockwait/sem_post are thread-safe; `inside` is atomic.
    private let semaphore: UnsafeMutablePointer<sem_t>
    private let inside = Atomic<Int>(0)
    let permits: Int
    /// Logins let in at once, running or waiting their turn: twice as many wait as run, and
    /// at most `threads - activeThreads - 1`, so that a standby worker is left for the other
    /// slow routes; but always at least 1 (with fewer threads a login takes the last standby
    /// or an active worker for its hash: `AppConfiguration` warns of that).
    let admitted: Int
    let waitMilliseconds: Int

    /// - Parameter threads, activeThreads: the server's (see `admitted`).
    init(permits: Int, waitMilliseconds: Int, threads: Int = 8, activeThreads: Int = 2) {
        self.permits = max(1, permits)
        admitted = max(1, min(3 * self.permits, threads - min(activeThreads, threads) - 1))
        self.waitMilliseconds = max(0, waitMilliseconds)
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, UInt32(clamping: self.permits))
    }

    /// Logins inside now, running or waiting (for tests and diagnostics).
    var loginsInside: Int { inside.load(ordering: .relaxed) }

    /// Runs `check` once a permit is free, waiting at most `waitMilliseconds`; `nil` (and
    /// `check` not run) when `admitted` logins are in already or no permit was free in time.
    func run<Result>(_ check: () -> Result) -> Result? {
        defer { inside.subtract(1, ordering: .relaxed) }
        guard inside.add(1, ordering: .relaxed).newValue <= admitted, enter() else { return nil }
        defer { sem_post(semaphore) }
        return check()
    }

    private func enter() -> Bool {
        if sem_trywait(semaphore) == 0 { return true }
        var deadline = timespec()
        // On the monotonic clock: a step of the wall clock (NTP, an operator) during the wait
        // neither lengthens nor cuts it.
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let nanoseconds = Int(deadline.tv_nsec) + (waitMilliseconds % 1000) * 1_000_000
        deadline.tv_sec += waitMilliseconds / 1000 + nanoseconds / 1_000_000_000
        deadline.tv_nsec = nanoseconds % 1_000_000_000
        while true {
            if sem_clockwait(semaphore, CLOCK_MONOTONIC, &deadline) == 0 { return true }
            if errno != EINTR { return false }
        }
    }
}
