import CoreMetrics
import Glibc
import Prometheus

/// The application's metrics, in one Prometheus registry per process: session lifecycle
/// events, ids refused, store errors and replica waits (rare events, swift-metrics counters).
/// Requests by route and status and their latency (`requests`, counted per worker without a
/// lock), the Redis clients' counters (`redis`, likewise) and the FastCGI server's connection
/// counters are added at scrape time.
final class AppMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    /// Lifecycle events: created, rotated, destroyed, revoked, login, login_refused.
    private let events: [String: CoreMetrics.Counter]
    /// Presented ids that were refused: unknown, expired (signed by this deployment, no longer
    /// live), forged, superseded.
    private let refusedIDs: [String: CoreMetrics.Counter]
    private let storeErrors: [String: CoreMetrics.Counter]
    private let replication: [String: CoreMetrics.Counter]
    /// Requests and their latency, per worker, summed at scrape time.
    let requests = RequestStatistics()
    /// Each worker's Redis client counters, summed at scrape time.
    let redis = RedisClientMetrics()
    /// Whether the store is in an outage, for the log line that ends one.
    let storeOutage = StoreOutage()

    static let eventNames = ["created", "rotated", "destroyed", "revoked", "login", "login_refused", "login_busy", "login_throttled", "trusted_login_refused"]
    static let refusalNames = ["unknown", "expired", "forged", "malformed", "superseded"]

    init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
        ]
        self.factory = factory
        events = Dictionary(uniqueKeysWithValues: Self.eventNames.map {
            ($0, CoreMetrics.Counter(label: "session_events_total", dimensions: [("event", $0)], factory: factory))
        })
        refusedIDs = Dictionary(uniqueKeysWithValues: Self.refusalNames.map {
            ($0, CoreMetrics.Counter(label: "session_ids_refused_total", dimensions: [("reason", $0)], factory: factory))
        })
        storeErrors = Dictionary(uniqueKeysWithValues: ["unavailable", "failed"].map {
            ($0, CoreMetrics.Counter(label: "session_store_errors_total", dimensions: [("kind", $0)], factory: factory))
        })
        replication = Dictionary(uniqueKeysWithValues: ["confirmed", "unconfirmed", "unknown"].map {
            ($0, CoreMetrics.Counter(label: "session_replica_waits_total", dimensions: [("outcome", $0)], factory: factory))
        })
    }

    func event(_ name: String) { events[name]?.increment() }
    func refused(_ reason: String) { refusedIDs[reason]?.increment() }
    func storeError(_ kind: String) { storeErrors[kind]?.increment() }
    func replicaWait(_ outcome: String) { replication[outcome]?.increment() }

    /// The Prometheus text exposition of every metric, plus `extra` lines (counters read at
    /// scrape time).
    func exposition(extra: String = "") -> [UInt8] {
        var buffer = Array(ProductVersion.metric.utf8)
        registry.emit(into: &buffer)
        buffer.append(contentsOf: requests.exposition().utf8)
        buffer.append(contentsOf: redis.exposition().utf8)
        buffer.append(contentsOf: extra.utf8)
        buffer.append(contentsOf: ProcessMetrics.exposition().utf8)
        return buffer
    }
}
