import Synchronization

/// What happened to connections since the start, for the summary logged at shutdown (and for
/// the end-to-end tests, which read it). Counted per connection, never per request, except
/// `WorkerCounters`.
final class ServerCounters: Sendable {
    let accepted = Atomic<Int>(0)
    let refusedPeers = Atomic<Int>(0)
    let overLimit = Atomic<Int>(0)
    let silentClosed = Atomic<Int>(0)
    let idleClosed = Atomic<Int>(0)
    let writeFailures = Atomic<Int>(0)

    func summary(requests: Int) -> String {
        "served \(requests) requests on \(accepted.load(ordering: .relaxed)) accepted connections; "
            + "refused \(refusedPeers.load(ordering: .relaxed)) peers not allowed, "
            + "\(overLimit.load(ordering: .relaxed)) connections over the limit; "
            + "closed \(silentClosed.load(ordering: .relaxed)) silent and \(idleClosed.load(ordering: .relaxed)) idle connections; "
            + "\(writeFailures.load(ordering: .relaxed)) failed responses"
    }
}
