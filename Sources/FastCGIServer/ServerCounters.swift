import Synchronization

/// What happened to connections since the start, for the summary logged at shutdown, the
/// metrics an application exports, and the end-to-end tests. Counted per connection, never per
/// request (requests are counted per worker, in `WorkerCounters`).
public final class ServerCounters: Sendable {
    let accepted = Atomic<Int>(0)
    let refusedPeers = Atomic<Int>(0)
    let overLimit = Atomic<Int>(0)
    let silentClosed = Atomic<Int>(0)
    let idleClosed = Atomic<Int>(0)
    let writeFailures = Atomic<Int>(0)
    /// Connections open now (accepted and not yet closed), against `--max-connections`.
    let openConnections = Atomic<Int>(0)

    /// A copy of every counter, for metrics.
    public struct Snapshot: Equatable, Sendable {
        public let accepted: Int
        public let refusedPeers: Int
        public let overLimit: Int
        public let silentClosed: Int
        public let idleClosed: Int
        public let writeFailures: Int
        public let open: Int
    }

    public var snapshot: Snapshot {
        Snapshot(accepted: accepted.load(ordering: .relaxed), refusedPeers: refusedPeers.load(ordering: .relaxed),
                 overLimit: overLimit.load(ordering: .relaxed), silentClosed: silentClosed.load(ordering: .relaxed),
                 idleClosed: idleClosed.load(ordering: .relaxed), writeFailures: writeFailures.load(ordering: .relaxed),
                 open: openConnections.load(ordering: .relaxed))
    }

    func summary(requests: Int) -> String {
        "served \(requests) requests on \(accepted.load(ordering: .relaxed)) accepted connections; "
            + "refused \(refusedPeers.load(ordering: .relaxed)) peers not allowed, "
            + "\(overLimit.load(ordering: .relaxed)) connections over the limit; "
            + "closed \(silentClosed.load(ordering: .relaxed)) silent and \(idleClosed.load(ordering: .relaxed)) idle connections; "
            + "\(writeFailures.load(ordering: .relaxed)) failed responses"
    }
}
