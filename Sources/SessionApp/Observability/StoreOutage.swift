import Glibc
import Synchronization

/// When the session store became unavailable, across the process's workers, so that the log
/// says once when an outage ends ("store available again after N ms", `event=store_recovered`)
/// and an operator can read its length from the log alone. (While it lasts, each worker logs
/// `store_unavailable` at most once a second.) An outage ends only at a success with no failure
/// for `quietMilliseconds` before it: after Redis comes back, each worker reconnects on its own
/// (some still fail for up to a second), and a request answered in the middle of a partial
/// outage (one cluster node down, Redis full) must not end it. One load of an atomic per answer
/// while the store is fine.
final class StoreOutage: Sendable {
    /// Milliseconds of the monotonic clock when the outage began; 0 while the store answers.
    private let began = Atomic<Int64>(0)
    /// When a request last found the store unavailable.
    private let lastFailure = Atomic<Int64>(0)
    let quietMilliseconds: Int64
    /// Milliseconds of a monotonic clock (tests pass their own).
    private let now: @Sendable () -> Int64

    init(quietMilliseconds: Int64 = 1000, now: @escaping @Sendable () -> Int64 = StoreOutage.monotonicMilliseconds) {
        self.quietMilliseconds = quietMilliseconds
        self.now = now
    }

    /// A request found the store unavailable.
    func noteUnavailable() {
        let now = max(1, now())
        lastFailure.store(now, ordering: .relaxed)
        guard began.load(ordering: .relaxed) == 0 else { return }
        _ = began.compareExchange(expected: 0, desired: now, ordering: .relaxed)
    }

    /// A request was answered with the store's help: the milliseconds from the outage's start
    /// to its last failure if this ends one (only one caller gets them), else nil.
    func noteAnswered() -> Int64? {
        let start = began.load(ordering: .relaxed)
        guard start != 0 else { return nil }
        let last = lastFailure.load(ordering: .relaxed)
        guard now() - last >= quietMilliseconds else { return nil }
        guard began.compareExchange(expected: start, desired: 0, ordering: .relaxed).exchanged else { return nil }
        return max(0, last - start)
    }

    @Sendable static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
