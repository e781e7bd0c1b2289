import CoreMetrics
import Glibc
import Prometheus

/// The application's metrics, in one Prometheus registry per process: requests by route and
/// status, a latency histogram per route, session lifecycle events, ids refused, store errors
/// and replica waits. `RedisClient` adds its own through swift-metrics (bootstrapped with the
/// same registry); the FastCGI server's connection counters are added at scrape time.
final class AppMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    /// Lifecycle events: created, rotated, destroyed, revoked, login, login_refused.
    private let events: [String: CoreMetrics.Counter]
    /// Presented ids that were refused: unknown (or expired), forged, superseded.
    private let refusedIDs: [String: CoreMetrics.Counter]
    private let storeErrors: [String: CoreMetrics.Counter]
    private let replication: [String: CoreMetrics.Counter]

    static let eventNames = ["created", "rotated", "destroyed", "revoked", "login", "login_refused"]
    static let refusalNames = ["unknown", "forged", "superseded"]

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
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        buffer.append(contentsOf: extra.utf8)
        return buffer
    }
}

/// Requests by (route, status) and latency by route, for one worker: the metric handles are made
/// on first use and kept by the worker, so counting a request takes no lock (the registry
/// hands every worker the same underlying series).
final class RequestMetrics {
    private let factory: PrometheusMetricsFactory
    /// Route → status → counter: looked up with the route's own string, no key built per request.
    private var requests: [String: [Int: CoreMetrics.Counter]] = [:]
    private var latencies: [String: CoreMetrics.Timer] = [:]

    init(_ metrics: AppMetrics) {
        factory = metrics.factory
    }

    func record(route: String, status: Int, nanoseconds: Int64) {
        if let counter = requests[route]?[status] {
            counter.increment()
        } else {
            let counter = CoreMetrics.Counter(label: "session_http_requests_total", dimensions: [("route", route), ("status", String(status))],
                                              factory: factory)
            requests[route, default: [:]][status] = counter
            counter.increment()
        }
        if let timer = latencies[route] {
            timer.recordNanoseconds(nanoseconds)
        } else {
            let timer = CoreMetrics.Timer(label: "session_http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
            latencies[route] = timer
            timer.recordNanoseconds(nanoseconds)
        }
    }
}
