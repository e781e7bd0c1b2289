/// One Redis command as an argument vector, stored as one contiguous byte buffer so that sending
/// it is binary-safe (`redisCommandArgv`) and costs no per-argument allocation.
public struct RedisCommand: Sendable, Equatable {
    /// All arguments, back to back.
    public private(set) var bytes: [UInt8] = []
    /// The length of each argument in `bytes`.
    public private(set) var lengths: [Int] = []

    public init(_ arguments: String...) {
        for argument in arguments { append(argument) }
    }

    public init(arguments: [String]) {
        for argument in arguments { append(argument) }
    }

    /// An empty command with room for `bytes` bytes in `arguments` arguments.
    public init(reservingBytes bytes: Int, arguments: Int) {
        self.bytes.reserveCapacity(bytes)
        lengths.reserveCapacity(arguments)
    }

    /// Adds a text argument (sent as its UTF-8 bytes).
    public mutating func append(_ argument: String) {
        var argument = argument
        argument.withUTF8 { text in
            let start = bytes.count
            if let base = text.baseAddress, text.count > 0 {
                bytes.append(contentsOf: UnsafeBufferPointer(start: base, count: text.count))
            }
            lengths.append(bytes.count - start)
        }
    }

    /// Adds a binary argument.
    public mutating func append<Bytes: Collection>(bytes argument: Bytes) where Bytes.Element == UInt8 {
        bytes.append(contentsOf: argument)
        lengths.append(argument.count)
    }

    /// Adds one argument made of two strings back to back (a key prefix and an id, say)
    /// without building the joined string first.
    public mutating func append(concatenating first: String, _ second: String) {
        let start = bytes.count
        var first = first, second = second
        first.withUTF8 { bytes.append(contentsOf: $0) }
        second.withUTF8 { bytes.append(contentsOf: $0) }
        lengths.append(bytes.count - start)
    }

    /// Adds a decimal integer argument.
    public mutating func append(_ argument: Int) {
        appendDecimal(Int64(argument))
    }

    /// Adds a decimal integer argument.
    public mutating func append(_ argument: Int64) {
        appendDecimal(argument)
    }

    private mutating func appendDecimal(_ value: Int64) {
        // Digits are written backwards into 20 bytes on the stack, then copied once.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { scratch in
            var magnitude = value.magnitude
            var index = scratch.count
            repeat {
                index -= 1
                scratch[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            let start = bytes.count
            if value < 0 { bytes.append(UInt8(ascii: "-")) }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[index...]))
            lengths.append(bytes.count - start)
        }
    }

    /// Adds every argument of `other`, in order.
    public mutating func append(contentsOf other: RedisCommand) {
        bytes.append(contentsOf: other.bytes)
        lengths.append(contentsOf: other.lengths)
    }

    /// Forgets every argument, keeping the storage (for a reused scratch command).
    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        lengths.removeAll(keepingCapacity: true)
    }

    /// The number of arguments, command name included.
    public var count: Int { lengths.count }

    /// The arguments as text, for tests and debugging (never log commands carrying secrets).
    public var arguments: [String] {
        var result: [String] = []
        var start = 0
        for length in lengths {
            result.append(String(decoding: bytes[start..<start + length], as: UTF8.self))
            start += length
        }
        return result
    }
}
