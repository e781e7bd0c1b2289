import Foundation
import RedisClient

/// A flag shared with traffic threads.
final class LockedFlag: @unchecked Sendable {
    // @unchecked: `flag` is only touched under `lock`.
    private let lock = NSLock()
    private var flag: Bool
    init(_ value: Bool) { flag = value }
    var value: Bool { lock.withLock { flag } }
    func set(_ value: Bool) { lock.withLock { flag = value } }
}

/// Acknowledged increments per session, failures and client statistics, from traffic threads.
final class LockedTally: @unchecked Sendable {
    // @unchecked: every property is only touched under `lock`.
    private let lock = NSLock()
    private var perSession: [Int]
    private var failed: [String] = []
    private var summed = RedisClientStatistics()

    init(sessions: Int) { perSession = Array(repeating: 0, count: sessions) }

    func count(_ session: Int) { lock.withLock { perSession[session] += 1 } }
    func fail(_ why: String) { lock.withLock { failed.append(why) } }
    func add(_ statistics: RedisClientStatistics) {
        lock.withLock {
            summed.moved += statistics.moved
            summed.asked += statistics.asked
            summed.tryAgains += statistics.tryAgains
            summed.slotMapRefreshes += statistics.slotMapRefreshes
        }
    }

    var counts: [Int] { lock.withLock { perSession } }
    var failures: [String] { lock.withLock { failed } }
    var statistics: RedisClientStatistics { lock.withLock { summed } }
}

/// Timestamped outcomes of requests from traffic threads.
final class LockedEventLog: @unchecked Sendable {
    struct Event { let time: Date; let ok: Bool }
    // @unchecked: `list` is only touched under `lock`.
    private let lock = NSLock()
    private var list: [Event] = []
    func record(_ ok: Bool) {
        let event = Event(time: Date(), ok: ok)
        lock.withLock { list.append(event) }
    }
    var events: [Event] { lock.withLock { list } }
}
