import Glibc
import Synchronization

/// When the session store became unavailable, across the process's workers, so that the log
/// says once when an outage ends ("store available again after N ms", `event=store_recovered`)
/// and an operator can read its length from the log alone. (While it lasts, each worker logs
/// `store_unavailable` at most once a second.) One load of an atomic per answer while the store
/// is fine.
final class StoreOutage: Sendable {
    /// Milliseconds of the monotonic clock when the outage began; 0 while the store answers.
    private let began = Atomic<Int64>(0)

    /// A request found the store unavailable.
    func noteUnavailable() {
        guard began.load(ordering: .relaxed) == 0 else { return }
        _ = began.compareExchange(expected: 0, desired: max(1, Self.nowMilliseconds()), ordering: .relaxed)
    }

    /// A request was answered with the store's help: the milliseconds the outage lasted if this
    /// ends one (only one caller gets them), else nil.
    func noteAnswered() -> Int64? {
        guard began.load(ordering: .relaxed) != 0 else { return nil }
        let start = began.exchange(0, ordering: .relaxed)
        return start == 0 ? nil : Self.nowMilliseconds() - start
    }

    private static func nowMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
