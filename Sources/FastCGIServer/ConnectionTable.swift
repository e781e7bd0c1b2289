import Synchronization

/// One `ConnectionSlot` word per file descriptor number below `capacity`, changed only by
/// compare-and-swap: the hand-off between the acceptor, the workers and the sweeper takes no
/// lock. See `ConnectionSlot` for the states and who may move between them.
///
/// Descriptors at or above `capacity` are never registered (the acceptor closes them), so a
/// bounded array indexed by the descriptor number suffices.
final class ConnectionTable: @unchecked Sendable {
    // @unchecked Sendable, the proof: `words` is allocated and every element initialized in
    // `init`, before the table can be shared; the pointer itself never changes afterwards; every
    // later access to the memory is an operation on an `Atomic`; and it is freed in `deinit`,
    // when no other reference to the table (and so no other thread using it) remains.
    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    let capacity: Int
    /// The highest descriptor ever registered, so sweeps stop there.
    private let highest = Atomic<Int>(-1)

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        words = .allocate(capacity: self.capacity)
        for index in 0..<self.capacity {
            (words + index).initialize(to: Atomic(ConnectionSlot.unused.word))
        }
    }

    deinit {
        words.deinitialize(count: capacity)
        words.deallocate()
    }

    func contains(_ descriptor: Int32) -> Bool { descriptor >= 0 && Int(descriptor) < capacity }

    /// The current slot (for sweeps and tests; may be stale as soon as it is read).
    func slot(_ descriptor: Int32) -> ConnectionSlot {
        ConnectionSlot(word: words[Int(descriptor)].load(ordering: .acquiring))
    }

    /// Descriptors that may be in use: 0 through the highest ever registered.
    var registeredRange: Range<Int32> { 0..<Int32(highest.load(ordering: .acquiring) + 1) }

    /// Registers a descriptor that accept(2) (or the server, for the listener) just produced,
    /// whatever its slot said before. Returns the generation to put in its epoll event; then
    /// call `finishArming`.
    func register(_ descriptor: Int32, kind: ConnectionSlot.Kind, timed: Bool, deadline: UInt32) -> UInt32 {
        let index = Int(descriptor)
        highest.max(index, ordering: .releasing)
        while true {
            let current = words[index].load(ordering: .acquiring)
            let next = ConnectionSlot(word: current).registering(kind: kind, timed: timed, deadline: deadline)
            if words[index].compareExchange(expected: current, desired: next.word, ordering: .acquiringAndReleasing).exchanged {
                return next.generation
            }
        }
    }

    /// The holder hands the descriptor back to epoll: `busy` → `arming` with a new generation
    /// (nil if it is not busy with `generation`). Then re-arm it in epoll and call `finishArming`.
    func rearm(_ descriptor: Int32, generation: UInt32, timed: Bool, deadline: UInt32,
               served: Bool, raisedLowWater: Bool = false) -> UInt32? {
        let index = Int(descriptor)
        let current = words[index].load(ordering: .acquiring)
        let slot = ConnectionSlot(word: current)
        guard slot.generation == generation & ConnectionSlot.generationMask,
              let next = slot.rearming(timed: timed, deadline: deadline, served: served, raisedLowWater: raisedLowWater),
              words[index].compareExchange(expected: current, desired: next.word, ordering: .acquiringAndReleasing).exchanged
        else { return nil }
        return next.generation
    }

    /// `arming` → `armed`, once the descriptor is in epoll. Does nothing if a worker already
    /// claimed it (its event can arrive before this runs).
    func finishArming(_ descriptor: Int32, generation: UInt32) {
        let index = Int(descriptor)
        let current = words[index].load(ordering: .acquiring)
        let slot = ConnectionSlot(word: current)
        guard slot.generation == generation & ConnectionSlot.generationMask, let next = slot.armedAfterArming() else { return }
        _ = words[index].compareExchange(expected: current, desired: next.word, ordering: .acquiringAndReleasing)
    }

    /// A worker woken by an event carrying `generation` takes the descriptor (`busy`) and gets
    /// its slot. Nil when the event is stale: the descriptor was closed, reused, re-armed, or
    /// taken by the sweeper.
    func claim(_ descriptor: Int32, generation: UInt32) -> ConnectionSlot? {
        guard contains(descriptor) else { return nil }
        let index = Int(descriptor)
        while true {
            let current = words[index].load(ordering: .acquiring)
            let slot = ConnectionSlot(word: current)
            guard let next = slot.claimed(by: generation) else { return nil }
            if words[index].compareExchange(expected: current, desired: next.word, ordering: .acquiringAndReleasing).exchanged {
                return next
            }
            // `arming` became `armed` meanwhile: try again with the new word.
        }
    }

    /// The holder gives the descriptor up, before closing it (or after libfcgi closed it). False
    /// if the slot moved on: after libfcgi's own close, accept(2) may already have handed the
    /// number to a new connection, whose registration must stay.
    @discardableResult
    func release(_ descriptor: Int32, generation: UInt32) -> Bool {
        let index = Int(descriptor)
        let current = words[index].load(ordering: .acquiring)
        guard let next = ConnectionSlot(word: current).releasedByHolder(generation: generation) else { return false }
        return words[index].compareExchange(expected: current, desired: next.word, ordering: .acquiringAndReleasing).exchanged
    }

    /// The sweeper (or the acceptor making room) takes an idle descriptor if `condition` holds
    /// for its slot (a connection becomes `free`: close it; the listener becomes `busy`).
    /// Returns the slot it had.
    func takeIdle(_ descriptor: Int32, if condition: (ConnectionSlot) -> Bool) -> ConnectionSlot? {
        let index = Int(descriptor)
        let current = words[index].load(ordering: .acquiring)
        let slot = ConnectionSlot(word: current)
        guard condition(slot), let next = slot.takenWhileIdle(),
              words[index].compareExchange(expected: current, desired: next.word, ordering: .acquiringAndReleasing).exchanged
        else { return nil }
        return slot
    }

    /// The 64-bit epoll event payload: generation and descriptor.
    static func token(_ descriptor: Int32, generation: UInt32) -> UInt64 {
        UInt64(generation & ConnectionSlot.generationMask) << 32 | UInt64(UInt32(bitPattern: descriptor))
    }

    static func decode(_ token: UInt64) -> (descriptor: Int32, generation: UInt32) {
        (Int32(bitPattern: UInt32(truncatingIfNeeded: token)), UInt32(truncatingIfNeeded: token >> 32))
    }
}
