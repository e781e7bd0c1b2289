import Foundation

/// Polls `condition` every `interval` until it holds or `timeout` passes (then throws, naming
/// `what`). Errors thrown by the condition count as "not yet".
public func waitUntil(_ what: String, timeout: TimeInterval, interval: TimeInterval = 0.05,
                      _ condition: () throws -> Bool) throws {
    try waitUntil(what, timeout: timeout, interval: interval) { () throws -> String? in try condition() ? nil : "not yet" }
}

/// Polls `check` every `interval` until it returns `nil` (done) or `timeout` passes; the
/// timeout error carries the last reason `check` gave (a string, or the error it threw).
public func waitUntil(_ what: String, timeout: TimeInterval, interval: TimeInterval = 0.05,
                      _ check: () throws -> String?) throws {
    let deadline = Date().addingTimeInterval(timeout)
    var reason = "never checked"
    while true {
        do {
            guard let why = try check() else { return }
            reason = why
        } catch {
            reason = "\(error)"
        }
        if Date() >= deadline { throw TestSupportError.timedOut("\(what) (last: \(reason))") }
        Thread.sleep(forTimeInterval: interval)
    }
}
