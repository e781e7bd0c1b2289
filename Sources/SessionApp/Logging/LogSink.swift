import Glibc
import Synchronization

/// Where log lines go: a file opened for appending (reopened on SIGHUP, so logrotate can move
/// it away), or standard error. Thread-safe: each line is one `write(2)` under a lock, so lines
/// from different threads never interleave and a reopen never races a write.
final class LogSink: Sendable {
    let path: String?
    private let descriptor: Locked<Int32>
    /// Lines not written whole (a full disk, a file made unwritable): serving goes on, and this
    /// count (`session_log_lines_lost_total`) says what the log is missing.
    private let lost = Atomic<Int>(0)
    /// Whether the file ends in a line cut short (only read and written under `descriptor`'s
    /// lock): the next line then starts on a line of its own.
    private let cut = Atomic<Bool>(false)

    /// Lines lost so far.
    var linesLost: Int { lost.load(ordering: .relaxed) }

    /// Appends to `path` (created 0640 if missing), or writes to standard error for `nil`.
    init(path: String?) throws(LogSinkError) {
        self.path = path
        guard let path else {
            descriptor = Locked(2)
            return
        }
        descriptor = Locked(try Self.open(path))
    }

    deinit {
        descriptor.withLock { if $0 > 2 { close($0) } }
    }

    /// Writes one line (the caller ends it with a newline).
    func write(_ line: String) {
        descriptor.withLock { fd in
            let wasCut = cut.load(ordering: .relaxed)
            var text = wasCut ? "\n" + line : line
            text.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Glibc.write(fd, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    guard written > 0 else {
                        lost.add(1, ordering: .relaxed)
                        // Nothing written leaves the file as it was; part of it leaves a cut line.
                        if offset > 0 { cut.store(!(wasCut && offset == 1), ordering: .relaxed) }
                        return
                    }
                    offset += written
                }
                cut.store(false, ordering: .relaxed)
            }
        }
    }

    /// Opens the file again under its name (after logrotate moved it) and switches to it; the
    /// old descriptor is closed. Keeps writing to the old one if the new one cannot be opened.
    func reopen() throws(LogSinkError) {
        guard let path else { return }
        let fresh = try Self.open(path)
        descriptor.withLock { fd in
            if fd > 2 { close(fd) }
            fd = fresh
        }
    }

    private static func open(_ path: String) throws(LogSinkError) -> Int32 {
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw LogSinkError(path: path, reason: String(cString: strerror(errno))) }
        return fd
    }
}

/// A log file that cannot be opened.
struct LogSinkError: Error, CustomStringConvertible {
    let path: String
    let reason: String
    var description: String { "cannot open log file \(path): \(reason)" }
}
