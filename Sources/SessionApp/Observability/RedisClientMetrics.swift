import RedisClient

/// The Redis clients' counters (one client per worker), summed at scrape time: workers count
/// on their own client with plain atomic stores and take no lock; only registering a worker's
/// client and scraping do.
final class RedisClientMetrics: Sendable {
    private let clients = Locked<[RedisClientCounters]>([])

    /// Counts `counters` in every scrape from now on.
    func register(_ counters: RedisClientCounters) {
        clients.withLock { $0.append(counters) }
    }

    /// Every counter summed over the clients, by `RedisClientCounters.snapshot` name.
    func totals() -> [String: Int] {
        var totals: [String: Int] = [:]
        for client in clients.withLock({ $0 }) {
            for (name, value) in client.snapshot { totals[name, default: 0] += value }
        }
        return totals
    }

    /// The Prometheus text of the Redis client metrics.
    func exposition() -> String {
        let totals = totals()
        func value(_ name: String) -> Int { totals[name] ?? 0 }
        var text = ""
        func counter(_ metric: String, _ help: String, _ series: [(labels: String, value: Int)]) {
            text += "# HELP \(metric) \(help)\n# TYPE \(metric) counter\n"
            for (labels, value) in series { text += metric + (labels.isEmpty ? "" : "{\(labels)}") + " \(value)\n" }
        }
        counter("redis_client_round_trips_total", "Commands or pipelines sent to a Redis data node and answered (handshakes included).",
                [("", value("round_trips"))])
        counter("redis_client_errors_total", "Redis failures by kind.", [
            ("kind=\"connect\"", value("connect_failures")), ("kind=\"timeout\"", value("timeouts")),
            ("kind=\"connection_lost\"", value("connections_lost")), ("kind=\"server\"", value("server_errors")),
            ("kind=\"credentials\"", value("credential_refusals")),
        ])
        counter("redis_client_reconnects_total", "Connections made to replace a closed or broken one.", [("", value("reconnects"))])
        counter("redis_client_script_reloads_total", "Scripts sent again in full after NOSCRIPT.", [("", value("script_reloads"))])
        counter("redis_client_cluster_redirections_total", "Cluster redirections followed.",
                [("kind=\"moved\"", value("moved")), ("kind=\"ask\"", value("asked"))])
        counter("redis_client_cluster_retries_total", "TRYAGAIN and CLUSTERDOWN answers waited out and retried.",
                [("", value("cluster_retries"))])
        counter("redis_client_slot_map_refreshes_total", "Cluster slot maps loaded (CLUSTER SLOTS).", [("", value("slot_map_refreshes"))])
        counter("redis_client_sentinel_resolutions_total", "Masters resolved through the Sentinels.", [("", value("master_resolutions"))])
        counter("redis_client_sentinel_queries_total", "Questions asked of Sentinels.", [("", value("sentinel_queries"))])
        counter("redis_client_replica_waits_total", "WAITs after security writes, by outcome.", [
            ("outcome=\"confirmed\"", value("waits") - value("wait_shortfalls")), ("outcome=\"short\"", value("wait_shortfalls")),
        ])
        return text
    }
}
