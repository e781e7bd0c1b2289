import Synchronization

/// Requests by route and status, and a latency histogram by route, for the whole process,
/// counted without a lock: each worker writes only its own `RequestCounters`, and a scrape adds
/// them up. Exported as `session_http_requests_total{route,status}` and
/// `session_http_request_duration_seconds{route}` (Prometheus text, the same series a
/// swift-metrics counter and timer would give).
final class RequestStatistics: Sendable {
    /// Upper bounds of the latency buckets, in nanoseconds, and as Prometheus writes them.
    static let bucketBounds: [Int64] = [250_000, 500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000, 25_000_000,
                                        50_000_000, 100_000_000, 250_000_000, 500_000_000, 1_000_000_000, 2_500_000_000]
    static let bucketLabels = ["0.00025", "0.0005", "0.001", "0.002", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5"]
    /// The statuses the service answers with, each with a slot; any other is counted apart,
    /// under a lock (a path the service does not take).
    static let statuses = [200, 204, 302, 303, 400, 401, 403, 404, 405, 409, 413, 415, 429, 431, 500, 503]
    /// Route slots per worker (the router has about 20 routes).
    static let routeCapacity = 48

    private let state = Locked<(names: [String], workers: [RequestCounters])>(([], []))

    init() {}

    /// A block of counters for one worker, counted in every scrape from now on. `routes` are
    /// the router's labels by route number (the same for every worker).
    func makeWorkerCounters(routes: [String]) -> RequestCounters {
        let counters = RequestCounters(routes: min(routes.count, Self.routeCapacity))
        state.withLock { state in
            if routes.count > state.names.count { state.names = Array(routes.prefix(Self.routeCapacity)) }
            state.workers.append(counters)
        }
        return counters
    }

    /// The Prometheus text of both metrics, summed over the workers.
    func exposition() -> String {
        let (names, workers) = state.withLock { ($0.names, $0.workers) }
        guard !names.isEmpty else { return "" }
        let statuses = Self.statuses
        let buckets = Self.bucketBounds.count
        var requests = [Int](repeating: 0, count: names.count * statuses.count)
        var histogram = [Int](repeating: 0, count: names.count * (buckets + 1))
        var sums = [Int](repeating: 0, count: names.count)
        var unusual: [Int: [Int: Int]] = [:]
        for worker in workers {
            for (route, statuses) in worker.unusualStatuses() {
                for (status, count) in statuses { unusual[route, default: [:]][status, default: 0] += count }
            }
            for route in 0..<min(names.count, worker.routes) {
                for status in 0..<statuses.count { requests[route * statuses.count + status] += worker.requests(route: route, statusSlot: status) }
                for bucket in 0...buckets { histogram[route * (buckets + 1) + bucket] += worker.bucket(route: route, bucket: bucket) }
                sums[route] += worker.nanoseconds(route: route)
            }
        }
        var text = "# TYPE session_http_requests_total counter\n"
        for (route, name) in names.enumerated() {
            for (slot, status) in statuses.enumerated() where requests[route * statuses.count + slot] > 0 {
                text += "session_http_requests_total{route=\"\(name)\",status=\"\(status)\"} \(requests[route * statuses.count + slot])\n"
            }
            for (status, count) in (unusual[route] ?? [:]).sorted(by: { $0.key < $1.key }) {
                text += "session_http_requests_total{route=\"\(name)\",status=\"\(status)\"} \(count)\n"
            }
        }
        text += "# TYPE session_http_request_duration_seconds histogram\n"
        for (route, name) in names.enumerated() {
            let counts = histogram[(route * (buckets + 1))..<((route + 1) * (buckets + 1))]
            let total = counts.reduce(0, +)
            guard total > 0 else { continue }
            var cumulative = 0
            for (bucket, label) in Self.bucketLabels.enumerated() {
                cumulative += counts[counts.startIndex + bucket]
                text += "session_http_request_duration_seconds_bucket{route=\"\(name)\",le=\"\(label)\"} \(cumulative)\n"
            }
            text += "session_http_request_duration_seconds_bucket{route=\"\(name)\",le=\"+Inf\"} \(total)\n"
            text += "session_http_request_duration_seconds_sum{route=\"\(name)\"} \(Self.seconds(sums[route]))\n"
            text += "session_http_request_duration_seconds_count{route=\"\(name)\"} \(total)\n"
        }
        return text
    }

    /// Nanoseconds as decimal seconds, exactly (no floating point).
    static func seconds(_ nanoseconds: Int) -> String {
        let fraction = String(nanoseconds % 1_000_000_000)
        return "\(nanoseconds / 1_000_000_000)." + String(repeating: "0", count: 9 - fraction.count) + fraction
    }
}

/// One worker's request counters. Only the worker that owns it records (with relaxed atomic
/// loads and stores: no lock, no locked instruction, and no cache line shared with another
/// worker); scrapes read it from another thread through the same atomics.
final class RequestCounters: @unchecked Sendable {
    // @unchecked: `cells` is allocated in init, freed in deinit and never reallocated, and every
    // read and write of it goes through `Atomic`; `unusual` is behind its mutex.
    let routes: Int
    private let statusCount = RequestStatistics.statuses.count
    private let bucketCount = RequestStatistics.bucketBounds.count + 1
    private let cells: UnsafeMutablePointer<Atomic<Int>>
    private let cellCount: Int
    /// Route → status → count, for statuses without a slot.
    private let unusual = Locked<[Int: [Int: Int]]>([:])

    init(routes: Int) {
        self.routes = routes
        cellCount = routes * (RequestStatistics.statuses.count + RequestStatistics.bucketBounds.count + 1 + 1)
        cells = .allocate(capacity: cellCount)
        for index in 0..<cellCount { (cells + index).initialize(to: Atomic(0)) }
    }

    deinit {
        cells.deinitialize(count: cellCount)
        cells.deallocate()
    }

    private var statusBase: Int { 0 }
    private var bucketBase: Int { routes * statusCount }
    private var sumBase: Int { routes * (statusCount + bucketCount) }

    /// Counts one request (called by the owning worker only).
    func record(route: Int, status: Int, nanoseconds: Int64) {
        guard route >= 0 && route < routes else { return }
        if let slot = Self.statusSlot(status) {
            bump(statusBase + route * statusCount + slot, by: 1)
        } else {
            unusual.withLock { $0[route, default: [:]][status, default: 0] += 1 }
        }
        var bucket = 0
        let bounds = RequestStatistics.bucketBounds
        while bucket < bounds.count && nanoseconds > bounds[bucket] { bucket += 1 }
        bump(bucketBase + route * bucketCount + bucket, by: 1)
        bump(sumBase + route, by: Int(max(0, nanoseconds)))
    }

    func requests(route: Int, statusSlot: Int) -> Int { load(statusBase + route * statusCount + statusSlot) }
    func bucket(route: Int, bucket: Int) -> Int { load(bucketBase + route * bucketCount + bucket) }
    func nanoseconds(route: Int) -> Int { load(sumBase + route) }

    /// The slot of a status in `RequestStatistics.statuses`.
    static func statusSlot(_ status: Int) -> Int? {
        switch status {
        case 200: return 0
        case 204: return 1
        case 302: return 2
        case 303: return 3
        case 400: return 4
        case 401: return 5
        case 403: return 6
        case 404: return 7
        case 405: return 8
        case 409: return 9
        case 413: return 10
        case 415: return 11
        case 429: return 12
        case 431: return 13
        case 500: return 14
        case 503: return 15
        default: return nil
        }
    }

    /// The one writer adds without a locked instruction: a relaxed load, then a relaxed store.
    @inline(__always)
    private func bump(_ index: Int, by amount: Int) {
        cells[index].store(cells[index].load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    private func load(_ index: Int) -> Int { cells[index].load(ordering: .relaxed) }

    func unusualStatuses() -> [Int: [Int: Int]] { unusual.withLock { $0 } }
}
