import Glibc

/// A value behind a `pthread_mutex_t`. Used instead of `Synchronization.Mutex` because
/// ThreadSanitizer (`deploy/sanitize thread`) intercepts pthread locks but does not see the
/// standard library's futex-based `Mutex` as synchronization, and then reports every access it
/// guards as a race; with this lock a report means a real one.
final class Locked<Value>: @unchecked Sendable {
    // @unchecked: `value` is read and written only between lock and unlock of `mutex`, which is
    // allocated once, never moved, and destroyed in deinit.
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with the value while holding the lock.
    func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
