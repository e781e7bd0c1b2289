import Glibc
import Logging
import Synchronization

/// Writes one kind of warning at most once per second, however many threads report it, and
/// says how many were left out since the previous line. Hostile peers can make these events
/// as often as they like; the log must not grow with them.
final class RateLimitedLog: Sendable {
    private let log: Logger
    private let lastSecond = Atomic<Int>(0)
    private let suppressed = Atomic<Int>(0)

    init(_ log: Logger) {
        self.log = log
    }

    /// Logs `message` (built only when it is written) unless a line went out this second.
    func warning(_ message: @autoclosure () -> String) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &now)
        let second = Int(now.tv_sec)
        let last = lastSecond.load(ordering: .relaxed)
        guard second != last, lastSecond.compareExchange(expected: last, desired: second, ordering: .relaxed).exchanged else {
            suppressed.add(1, ordering: .relaxed)
            return
        }
        let skipped = suppressed.exchange(0, ordering: .relaxed)
        log.warning("\(message())\(skipped > 0 ? " (and \(skipped) more since the last report)" : "")")
    }
}
