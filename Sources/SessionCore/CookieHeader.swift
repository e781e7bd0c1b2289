/// Reads a request's `Cookie` header (RFC 6265 §4.2: `name=value` pairs separated by `;`).
/// Works on UTF-8 bytes: no per-pair strings are made while scanning.
public enum CookieHeader {
    /// Calls `body` with each value sent under `name`, in header order, until it returns false.
    /// Works on the header's raw bytes (as received, no String made); the buffer is only valid
    /// during the call. Pairs without `=` and empty names are skipped; nothing here throws or traps.
    public static func forEachValue(named name: String, inUTF8 bytes: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Bool) {
        var name = name
        name.withUTF8 { wanted in
            var index = 0
            let end = bytes.count
            while index < end {
                // One pair: [index, pairEnd)
                var pairEnd = index
                while pairEnd < end && bytes[pairEnd] != semicolon { pairEnd += 1 }
                if let (nameRange, valueRange) = split(bytes, index, pairEnd),
                   nameRange.count == wanted.count,
                   memoryEqual(bytes, nameRange.lowerBound, wanted) {
                    let value = UnsafeBufferPointer(rebasing: bytes[valueRange])
                    if !body(value) { return }
                }
                index = pairEnd + 1
            }
        }
    }

    private static let semicolon = UInt8(ascii: ";")
    private static let equals = UInt8(ascii: "=")
    private static let quote = UInt8(ascii: "\"")

    private static func isBlank(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 }

    /// Trimmed name and value ranges of the pair in `[start, end)`, or nil without `=`.
    private static func split(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> (Range<Int>, Range<Int>)? {
        var equalsIndex = start
        while equalsIndex < end && bytes[equalsIndex] != equals { equalsIndex += 1 }
        guard equalsIndex < end else { return nil }
        var nameStart = start, nameEnd = equalsIndex
        while nameStart < nameEnd && isBlank(bytes[nameStart]) { nameStart += 1 }
        while nameEnd > nameStart && isBlank(bytes[nameEnd - 1]) { nameEnd -= 1 }
        var valueStart = equalsIndex + 1, valueEnd = end
        while valueStart < valueEnd && isBlank(bytes[valueStart]) { valueStart += 1 }
        while valueEnd > valueStart && isBlank(bytes[valueEnd - 1]) { valueEnd -= 1 }
        if valueEnd - valueStart >= 2 && bytes[valueStart] == quote && bytes[valueEnd - 1] == quote {
            valueStart += 1
            valueEnd -= 1
        }
        return (nameStart..<nameEnd, valueStart..<valueEnd)
    }

    private static func memoryEqual(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ other: UnsafeBufferPointer<UInt8>) -> Bool {
        for offset in 0..<other.count where bytes[start + offset] != other[offset] { return false }
        return true
    }
}
