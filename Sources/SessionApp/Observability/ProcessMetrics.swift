import FastCGIServer
import Glibc

/// The Prometheus client libraries' standard process series, read from `/proc` at scrape time:
/// `process_cpu_seconds_total`, `process_start_time_seconds`, `process_resident_memory_bytes`,
/// `process_virtual_memory_bytes`, `process_open_fds` and `process_max_fds`, so an instance can
/// be alerted on (memory, descriptors) and a restart seen, as with any other exporter.
enum ProcessMetrics {
    /// The series in the text exposition; series that cannot be read (no `/proc`) are left out.
    static func exposition() -> String {
        var text = ""
        if let stat = SelfStat.read() {
            text += series("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.", stat.cpuSeconds)
            if let started = stat.startTimeSeconds {
                text += series("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.", started)
            }
            text += series("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", Double(stat.residentBytes))
            text += series("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", Double(stat.virtualBytes))
        }
        if let open = openDescriptorCount() {
            text += series("process_open_fds", "gauge", "Number of open file descriptors.", Double(open))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            text += series("process_max_fds", "gauge", "Maximum number of open file descriptors.", Double(limit.rlim_cur))
        }
        return text
    }

    private static func series(_ name: String, _ type: String, _ help: String, _ value: Double) -> String {
        let number = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        return "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(number)\n"
    }

    /// The fields of `/proc/self/stat` these series need.
    struct SelfStat {
        var cpuSeconds: Double
        var startTimeSeconds: Double?
        var residentBytes: Int
        var virtualBytes: Int

        static func read() -> SelfStat? {
            guard let text = try? ConfigurationFile.text(at: "/proc/self/stat") else { return nil }
            return parse(text, ticksPerSecond: sysconf(Int32(_SC_CLK_TCK)), pageSize: sysconf(Int32(_SC_PAGESIZE)),
                         bootTime: bootTimeSeconds())
        }

        /// Parses the line (fields after the command name, which is in parentheses and may hold
        /// spaces or parentheses itself: the last `)` ends it).
        static func parse(_ text: String, ticksPerSecond: Int, pageSize: Int, bootTime: Int?) -> SelfStat? {
            guard let close = text.lastIndex(of: ")"), ticksPerSecond > 0 else { return nil }
            let fields = text[text.index(after: close)...].split(separator: " ")
            // fields[0] is the state, field 3 of proc(5); field n is at n - 3.
            guard fields.count > 21, let user = Int(fields[11]), let system = Int(fields[12]), let start = Int(fields[19]),
                  let virtual = Int(fields[20]), let resident = Int(fields[21]) else { return nil }
            return SelfStat(cpuSeconds: Double(user + system) / Double(ticksPerSecond),
                            startTimeSeconds: bootTime.map { Double($0) + Double(start) / Double(ticksPerSecond) },
                            residentBytes: resident * pageSize, virtualBytes: virtual)
        }
    }

    /// When the system booted, in seconds since the epoch: the wall clock less the time since
    /// boot (`/proc/stat`'s `btime` is hidden by the unit's `ProcSubset=pid`).
    private static func bootTimeSeconds() -> Int? {
        var wall = timespec(), sinceBoot = timespec()
        guard clock_gettime(CLOCK_REALTIME, &wall) == 0, clock_gettime(CLOCK_BOOTTIME, &sinceBoot) == 0 else { return nil }
        return Int(wall.tv_sec - sinceBoot.tv_sec)
    }
}
