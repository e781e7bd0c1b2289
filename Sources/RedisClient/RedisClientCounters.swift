import Synchronization

/// What one `RedisClient` has done, for metrics: round trips, failures by kind, reconnects,
/// cluster redirections and retries, slot-map loads, Sentinel look-ups and replica waits.
///
/// Written only by the thread that uses the client (a worker), and readable from any thread
/// (a metrics scrape) at any time. Each counter is an `Atomic` that its one writer moves on
/// with a relaxed load and a relaxed store — no locked instruction and no lock, so counting a
/// round trip costs the hot path two plain memory accesses — and that readers load relaxed.
/// Counters only grow; a reader sees each one at some recent value.
public final class RedisClientCounters: Sendable {
    /// Commands (or pipelines) written to a data node and answered: one per network round trip,
    /// the handshake of a new connection included. Sentinel look-ups are counted apart.
    public let roundTrips = Atomic<Int>(0)
    /// Connections that could not be made (refused, unreachable, timed out, TLS or handshake
    /// refused), including commands refused at once while connects back off.
    public let connectFailures = Atomic<Int>(0)
    /// Credentials Redis refused (`NOAUTH`, `WRONGPASS`, `NOPERM` replies, at the handshake or
    /// to a command), and commands refused at once while connects back off after such a
    /// handshake: a password or ACL out of step, not an outage. Not counted as server errors.
    public let credentialRefusals = Atomic<Int>(0)
    /// Commands whose reply did not come within the command timeout.
    public let timeouts = Atomic<Int>(0)
    /// Connections that broke during a command (reset, end of stream, protocol error).
    public let connectionsLost = Atomic<Int>(0)
    /// Error replies that are failures (wrong type, script errors, LOADING, READONLY, …); not
    /// the redirections, retries and script reloads counted below.
    public let serverErrors = Atomic<Int>(0)
    /// Connections made to replace one that was closed or broke (the first connection to a
    /// node is not a reconnect).
    public let reconnects = Atomic<Int>(0)
    /// Scripts sent again in full after `NOSCRIPT` (a restarted or flushed server).
    public let scriptReloads = Atomic<Int>(0)
    /// Cluster redirections followed.
    public let moved = Atomic<Int>(0)
    public let asked = Atomic<Int>(0)
    /// `TRYAGAIN` and `CLUSTERDOWN` answers waited out and retried.
    public let clusterRetries = Atomic<Int>(0)
    /// `CLUSTER SLOTS` loaded.
    public let slotMapRefreshes = Atomic<Int>(0)
    /// Masters resolved through the Sentinels (and confirmed with `ROLE`).
    public let masterResolutions = Atomic<Int>(0)
    /// `SENTINEL get-master-addr-by-name` sent (resolutions and the once-a-second checks).
    public let sentinelQueries = Atomic<Int>(0)
    /// `WAIT`s sent after security writes, and how many fell short of the replicas asked for.
    public let waits = Atomic<Int>(0)
    public let waitShortfalls = Atomic<Int>(0)

    public init() {}

    /// Adds `amount` to `counter`. Only the client's own thread calls this.
    @inline(__always)
    static func bump(_ counter: borrowing Atomic<Int>, by amount: Int = 1) {
        counter.store(counter.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    /// Counts a failure by its kind (server errors are counted where they are seen as replies).
    func count(_ error: RedisError) {
        switch error {
        case .connectFailed, .tlsRefused: Self.bump(connectFailures)
        case .timedOut: Self.bump(timeouts)
        case .connectionLost: Self.bump(connectionsLost)
        case .server, .unexpectedReply, .invalidCommand: break
        }
    }

    /// Every counter with its value now, by name.
    public var snapshot: [(name: String, value: Int)] {
        [("round_trips", roundTrips.load(ordering: .relaxed)), ("connect_failures", connectFailures.load(ordering: .relaxed)),
         ("timeouts", timeouts.load(ordering: .relaxed)), ("credential_refusals", credentialRefusals.load(ordering: .relaxed)), ("connections_lost", connectionsLost.load(ordering: .relaxed)),
         ("server_errors", serverErrors.load(ordering: .relaxed)), ("reconnects", reconnects.load(ordering: .relaxed)),
         ("script_reloads", scriptReloads.load(ordering: .relaxed)), ("moved", moved.load(ordering: .relaxed)),
         ("asked", asked.load(ordering: .relaxed)), ("cluster_retries", clusterRetries.load(ordering: .relaxed)),
         ("slot_map_refreshes", slotMapRefreshes.load(ordering: .relaxed)),
         ("master_resolutions", masterResolutions.load(ordering: .relaxed)), ("sentinel_queries", sentinelQueries.load(ordering: .relaxed)),
         ("waits", waits.load(ordering: .relaxed)), ("wait_shortfalls", waitShortfalls.load(ordering: .relaxed))]
    }
}
