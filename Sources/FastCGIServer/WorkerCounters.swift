import Synchronization

/// Requests served by one worker: each worker adds to its own counter, so the hot path never
/// contends on a shared one.
final class WorkerCounters: Sendable {
    let requests = Atomic<Int>(0)
}
