import Glibc

/// A point on the monotonic clock.
struct Deadline: Sendable {
    let nanoseconds: UInt64

    init(millisecondsFromNow milliseconds: Int) {
        nanoseconds = Self.now() &+ UInt64(max(0, milliseconds)) &* 1_000_000
    }

    var hasPassed: Bool { Self.now() >= nanoseconds }

    /// Milliseconds left, at least 0 (rounded up, so a poll never busy-waits on a fraction).
    var remainingMilliseconds: Int {
        let now = Self.now()
        guard nanoseconds > now else { return 0 }
        return Int((nanoseconds - now + 999_999) / 1_000_000)
    }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}
