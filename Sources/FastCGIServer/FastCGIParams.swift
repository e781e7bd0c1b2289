import Glibc

/// The FastCGI params of one request (`REQUEST_METHOD`, `HTTP_COOKIE`, …), copied out of
/// libfcgi into one byte buffer with an index: two allocations per request instead of two per
/// param. Lookup is a linear scan, which beats hashing for the dozen params nginx sends.
public struct FastCGIParams: Sendable, ExpressibleByDictionaryLiteral {
    private struct Entry: Sendable {
        var nameStart: Int32
        var nameLength: Int32
        var valueStart: Int32
        var valueLength: Int32
    }

    private var bytes: [UInt8] = []
    private var entries: [Entry] = []

    public init() {
        bytes.reserveCapacity(1024)
        entries.reserveCapacity(24)
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init()
        for (name, value) in elements { append(name: Array(name.utf8), value: Array(value.utf8)) }
    }

    /// Copies libfcgi's `NAME=VALUE` array (terminated by a null pointer) in one pass:
    /// one allocation for all bytes, one for the index.
    package init(copyingEnvironment envp: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) {
        var total = 0
        var entryCount = 0
        var cursor = envp
        while let entry = cursor.pointee {
            total += strlen(entry)
            entryCount += 1
            cursor += 1
        }
        var index: [Entry] = []
        index.reserveCapacity(entryCount)
        bytes = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            guard let destination = buffer.baseAddress else { return }
            var offset = 0
            var cursor = envp
            while let entry = cursor.pointee {
                let length = strlen(entry)
                memcpy(destination + offset, entry, length)
                if let equals = memchr(entry, Int32(UInt8(ascii: "=")), length) {
                    let nameLength = UnsafeRawPointer(equals) - UnsafeRawPointer(entry)
                    index.append(Entry(nameStart: Int32(offset), nameLength: Int32(nameLength),
                                       valueStart: Int32(offset + nameLength + 1), valueLength: Int32(length - nameLength - 1)))
                }
                offset += length
                cursor += 1
            }
            initialized = total
        }
        entries = index
    }

    /// Adds a `NAME=VALUE` entry as libfcgi stores it, with one copy; `separatorAt` is the
    /// offset of the `=`.
    public mutating func append(entry: UnsafeRawBufferPointer, separatorAt equals: Int) {
        let start = bytes.count
        bytes.append(contentsOf: entry)
        entries.append(Entry(nameStart: Int32(start), nameLength: Int32(equals),
                             valueStart: Int32(start + equals + 1), valueLength: Int32(entry.count - equals - 1)))
    }

    /// Adds a param. A name may repeat: the subscripts, `has`, `withValue` and `length` see the
    /// first value, `forEachValue` sees them all.
    public mutating func append<Name: Collection, Value: Collection>(name: Name, value: Value)
    where Name.Element == UInt8, Value.Element == UInt8 {
        let nameStart = bytes.count
        bytes.append(contentsOf: name)
        let valueStart = bytes.count
        bytes.append(contentsOf: value)
        entries.append(Entry(nameStart: Int32(nameStart), nameLength: Int32(valueStart - nameStart),
                             valueStart: Int32(valueStart), valueLength: Int32(bytes.count - valueStart)))
    }

    /// The value of param `name`, or `nil` when nginx did not send it.
    public subscript(name: String) -> String? {
        guard let range = valueRange(name) else { return nil }
        return String(decoding: bytes[range], as: UTF8.self)
    }

    /// Whether param `name` equals `value` exactly (no String is made).
    public func has(_ name: String, equalTo value: String) -> Bool {
        guard let range = valueRange(name) else { return false }
        return bytes[range].elementsEqual(value.utf8)
    }

    /// Lends `body` the raw bytes of param `name` (nil when absent), without copying them.
    public func withValue<Result>(of name: String, _ body: (UnsafeBufferPointer<UInt8>?) -> Result) -> Result {
        guard let range = valueRange(name) else { return body(nil) }
        return bytes.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[range])) }
    }

    /// Lends `body` the raw bytes of every value of param `name`, in the order received,
    /// without copying them or making Strings. nginx 1.22 sends one `HTTP_COOKIE` param per
    /// `Cookie` header line when a client sends several; this visits each of them. The buffers
    /// are valid only during `body`.
    public func forEachValue(of name: String, _ body: (UnsafeBufferPointer<UInt8>) throws -> Void) rethrows {
        var name = name
        try name.withUTF8 { wanted in
            try bytes.withUnsafeBufferPointer { buffer in
                guard let base = buffer.baseAddress, let wantedBase = wanted.baseAddress else { return }
                for entry in entries where Int(entry.nameLength) == wanted.count {
                    guard memcmp(base + Int(entry.nameStart), wantedBase, wanted.count) == 0 else { continue }
                    try body(UnsafeBufferPointer(start: base + Int(entry.valueStart), count: Int(entry.valueLength)))
                }
            }
        }
    }

    /// Every value of param `name`, in the order received (Strings: for tests and slow paths;
    /// the hot path uses `forEachValue`).
    public func values(of name: String) -> [String] {
        var result: [String] = []
        forEachValue(of: name) { result.append(String(decoding: $0, as: UTF8.self)) }
        return result
    }

    /// The length in bytes of param `name`'s value, without copying it.
    public func length(of name: String) -> Int? {
        valueRange(name)?.count
    }

    /// Every param in the order received.
    public var all: [(name: String, value: String)] {
        entries.map { entry in
            (String(decoding: bytes[Int(entry.nameStart)..<Int(entry.nameStart + entry.nameLength)], as: UTF8.self),
             String(decoding: bytes[Int(entry.valueStart)..<Int(entry.valueStart + entry.valueLength)], as: UTF8.self))
        }
    }

    public var count: Int { entries.count }

    private func valueRange(_ name: String) -> Range<Int>? {
        var name = name
        return name.withUTF8 { wanted -> Range<Int>? in
            bytes.withUnsafeBufferPointer { buffer -> Range<Int>? in
                guard let base = buffer.baseAddress, let wantedBase = wanted.baseAddress else { return nil }
                for entry in entries where Int(entry.nameLength) == wanted.count {
                    if memcmp(base + Int(entry.nameStart), wantedBase, wanted.count) == 0 {
                        return Int(entry.valueStart)..<Int(entry.valueStart + entry.valueLength)
                    }
                }
                return nil
            }
        }
    }
}
