import Glibc

/// Milliseconds of `CLOCK_MONOTONIC_COARSE` (a vDSO read, no system call; a few milliseconds
/// of resolution), truncated to 32 bits. Compare with `hasPassed`, which handles the wrap every
/// 49.7 days; deadlines must lie less than 24.8 days ahead.
enum MonotonicClock {
    static func now() -> UInt32 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &time)
        return UInt32(truncatingIfNeeded: Int64(time.tv_sec) &* 1000 &+ Int64(time.tv_nsec) / 1_000_000)
    }

    /// `now` plus `milliseconds`.
    static func deadline(after milliseconds: Int, from now: UInt32 = now()) -> UInt32 {
        now &+ UInt32(truncatingIfNeeded: milliseconds)
    }

    /// Whether `deadline` is at or before `now`, across the 32-bit wrap.
    static func hasPassed(_ deadline: UInt32, now: UInt32) -> Bool {
        Int32(bitPattern: deadline &- now) <= 0
    }
}
