import Synchronization

/// Requests served by one worker, and the batches they came in (wake-ups that read at least one
/// request): each worker adds to its own counters, so the hot path never contends on a shared
/// one.
final class WorkerCounters: Sendable {
    let requests = Atomic<Int>(0)
    let batches = Atomic<Int>(0)
}
