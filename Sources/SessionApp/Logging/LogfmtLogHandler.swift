import Glibc
import Logging

/// One line per event in logfmt (`key=value`, values quoted when they need it):
///
///     ts=2026-11-25T23:59:59.123Z level=info pid=4242 msg="login" event=login user=ada session=Kx9…
///
/// Metadata keys are written in sorted order after `msg`; control characters in values are
/// escaped, so no value can start a line of its own. Session ids are never given to the
/// logger: lifecycle events carry `session=`, a keyed hash (`LogSessionHasher`).
struct LogfmtLogHandler: LogHandler {
    let sink: LogSink
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level
    private static let pid = getpid()

    init(sink: LogSink, level: Logger.Level) {
        self.sink = sink
        logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = "ts=" + Self.timestamp() + " level=" + event.level.rawValue + " pid=" + String(Self.pid)
        line += " msg=" + Self.quoted("\(event.message)")
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        for key in all.keys.sorted() {
            guard let value = all[key] else { continue }
            line += " " + key + "=" + Self.quoted("\(value)")
        }
        line += "\n"
        sink.write(line)
    }

    /// A logfmt value: bare when it is a plain token, otherwise quoted and escaped as a JSON
    /// string (quotes, backslashes and control characters, DEL included).
    static func quoted(_ value: String) -> String {
        let plain = !value.isEmpty && value.unicodeScalars.allSatisfy { scalar in
            scalar.value > 32 && scalar.value < 127 && scalar != "\"" && scalar != "=" && scalar != "\\"
        }
        return plain ? value : JSON.quoted(value)
    }

    /// `2026-11-25T23:59:59.123Z`.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = now.tv_nsec / 1_000_000
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))."
            + String(millis).leftPadded(3) + "Z"
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
