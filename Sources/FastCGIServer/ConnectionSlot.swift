/// What the server knows about one file descriptor, packed into one 64-bit word so that every
/// change is a single compare-and-swap (see `ConnectionTable`). Pure value logic, no I/O.
///
/// The life of a descriptor: `free` → `arming` (registered or re-armed in epoll, with a new
/// generation) → `armed` (waiting in epoll) → `busy` (one worker owns it) → `arming` again when
/// the worker keeps it, or `free` when it is closed. The sweeper may close an `armed`
/// descriptor whose deadline has passed, and the acceptor one that makes room at the
/// connection limit; nobody else may touch a `busy` one.
///
/// Every move into `arming` and into `free` takes a new generation, and each epoll event
/// carries the generation it was armed with. A worker claims a descriptor only if the event's
/// generation is the current one, so an event that was already on its way when the descriptor
/// was closed (or closed and reused by a new connection, or re-armed) is recognised as stale.
///
/// Layout: bits 0–1 state, bit 2 kind, bit 3 timed, bit 4 served, bit 5 raised low-water mark,
/// bits 6–31 generation, bits 32–63 deadline.
struct ConnectionSlot: Equatable, Sendable, CustomStringConvertible {
    enum State: UInt64, Sendable {
        /// Not a descriptor the server uses.
        case free = 0
        /// Being (re-)registered in epoll; an event for it may already be delivered.
        case arming = 1
        /// Waiting in epoll for its next request (or connection, for the listener).
        case armed = 2
        /// Owned by exactly one worker.
        case busy = 3
    }

    enum Kind: UInt64, Sendable {
        case connection = 0
        case listener = 1
    }

    /// Generations wrap at 2^26: a stale event would have to survive 67 million re-arms of the
    /// same descriptor to be mistaken for a current one.
    static let generationMask: UInt32 = (1 << 26) - 1

    var state: State
    var kind: Kind
    /// Whether `deadline` applies (always for connections; for the listener only while paused).
    var timed: Bool
    /// Whether the connection has served a request (its deadline is then the idle timeout,
    /// not the first-request timeout).
    var served: Bool
    /// Whether the connection waits for the rest of a request with SO_RCVLOWAT raised, to be
    /// put back to 1 before libfcgi reads from it.
    var raisedLowWater: Bool
    var generation: UInt32
    /// In `MonotonicClock` milliseconds, compared with wrap-around.
    var deadline: UInt32

    static let unused = ConnectionSlot(state: .free, kind: .connection, timed: false, served: false, generation: 0, deadline: 0)

    init(state: State, kind: Kind, timed: Bool, served: Bool, raisedLowWater: Bool = false, generation: UInt32, deadline: UInt32) {
        self.state = state
        self.kind = kind
        self.timed = timed
        self.served = served
        self.raisedLowWater = raisedLowWater
        self.generation = generation & Self.generationMask
        self.deadline = deadline
    }

    init(word: UInt64) {
        state = State(rawValue: word & 0b11) ?? .free
        kind = Kind(rawValue: (word >> 2) & 1) ?? .connection
        timed = (word >> 3) & 1 == 1
        served = (word >> 4) & 1 == 1
        raisedLowWater = (word >> 5) & 1 == 1
        generation = UInt32(truncatingIfNeeded: word >> 6) & Self.generationMask
        deadline = UInt32(truncatingIfNeeded: word >> 32)
    }

    var word: UInt64 {
        state.rawValue | kind.rawValue << 2 | (timed ? 1 << 3 : 0) | (served ? 1 << 4 : 0) | (raisedLowWater ? 1 << 5 : 0)
            | UInt64(generation & Self.generationMask) << 6 | UInt64(deadline) << 32
    }

    private var nextGeneration: UInt32 { (generation &+ 1) & Self.generationMask }

    // MARK: - Transitions (each returns the word to compare-and-swap to, or nil when not allowed)

    /// A new registration (the acceptor's, for a descriptor accept(2) just returned): allowed
    /// from any state, since the kernel only hands out a number nobody holds any more.
    func registering(kind: Kind, timed: Bool, deadline: UInt32) -> ConnectionSlot {
        ConnectionSlot(state: .arming, kind: kind, timed: timed, served: false, generation: nextGeneration, deadline: deadline)
    }

    /// A worker that holds the descriptor hands it back to epoll: after serving a request on it
    /// (`served`), or to wait for the rest of one (keeping its deadline).
    func rearming(timed: Bool, deadline: UInt32, served: Bool, raisedLowWater: Bool = false) -> ConnectionSlot? {
        guard state == .busy else { return nil }
        return ConnectionSlot(state: .arming, kind: kind, timed: timed, served: served, raisedLowWater: raisedLowWater,
                              generation: nextGeneration, deadline: deadline)
    }

    /// The registration is in epoll.
    func armedAfterArming() -> ConnectionSlot? {
        guard state == .arming else { return nil }
        var next = self
        next.state = .armed
        return next
    }

    /// A worker woken by an event armed with `eventGeneration` takes the descriptor.
    func claimed(by eventGeneration: UInt32) -> ConnectionSlot? {
        guard state == .armed || state == .arming, generation == eventGeneration & Self.generationMask else { return nil }
        var next = self
        next.state = .busy
        return next
    }

    /// The holder (`busy`) gives the descriptor up before closing it.
    func releasedByHolder(generation holderGeneration: UInt32) -> ConnectionSlot? {
        guard state == .busy, generation == holderGeneration & Self.generationMask else { return nil }
        return released()
    }

    /// The sweeper takes an idle (`armed`) descriptor, to close it or, for a paused listener,
    /// to resume it.
    func takenWhileIdle() -> ConnectionSlot? {
        guard state == .armed else { return nil }
        if kind == .listener {
            var next = self
            next.state = .busy
            return next
        }
        return released()
    }

    private func released() -> ConnectionSlot {
        ConnectionSlot(state: .free, kind: .connection, timed: false, served: false, generation: nextGeneration, deadline: 0)
    }

    /// Whether this idle connection goes before `other` when one must be closed to make room
    /// for a new one: a silent one, then one with part of its first request, then one that
    /// served; then the earlier deadline.
    func isClosedForRoom(before other: ConnectionSlot) -> Bool {
        if roomRank != other.roomRank { return roomRank < other.roomRank }
        return Int32(bitPattern: deadline &- other.deadline) < 0
    }

    private var roomRank: Int { served ? 2 : (raisedLowWater ? 1 : 0) }

    /// Whether the sweeper should act on it at `now`: idle, timed, and past its deadline.
    func hasExpired(at now: UInt32) -> Bool {
        state == .armed && timed && MonotonicClock.hasPassed(deadline, now: now)
    }

    var description: String {
        "\(state) \(kind)\(served ? " served" : "")\(raisedLowWater ? " low-water" : "") gen \(generation)"
            + (timed ? " deadline \(deadline)" : "")
    }
}
