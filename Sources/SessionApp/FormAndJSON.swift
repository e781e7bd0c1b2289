/// Parsing of the small request bodies the routes accept: `application/x-www-form-urlencoded`
/// and flat JSON objects (string, number, boolean and null values). Anything else is an error,
/// never a crash.
enum RequestBody {
    /// The body's fields, by its `Content-Type`; nil when it cannot be parsed.
    static func fields(_ body: [UInt8], contentType: String?) -> [String: JSONValue]? {
        let type = (contentType ?? "").lowercased()
        if type.hasPrefix("application/x-www-form-urlencoded") {
            return FormURLEncoded.parse(body).mapValues { .string($0) }
        }
        if type.hasPrefix("application/json") || type.isEmpty {
            return FlatJSON.parseObject(body)
        }
        return nil
    }
}

package enum JSONValue: Equatable {
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    package var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }
}

package enum FormURLEncoded {
    package static func parse(_ body: [UInt8]) -> [String: String] {
        var result: [String: String] = [:]
        for pair in body.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]) else { continue }
            let value = parts.count > 1 ? decode(parts[1]) : ""
            if let value, result[name] == nil { result[name] = value }
        }
        return result
    }

    /// Percent-encodes `text` for a query value: every byte but `A–Z a–z 0–9 - . _ ~ /` becomes
    /// `%XX`, so the result holds no byte that could end a header line or start another parameter.
    package static func encode(_ text: String) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
                output.append(byte)
            default:
                output.append(UInt8(ascii: "%"))
                output.append(digits[Int(byte >> 4)])
                output.append(digits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Percent-decoding with `+` as space; nil for a malformed escape.
    package static func decode(_ bytes: ArraySlice<UInt8>) -> String? {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "+") {
                output.append(32)
            } else if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.endIndex, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) else { return nil }
                output.append(high << 4 | low)
                index += 2
            } else {
                output.append(byte)
            }
            index += 1
        }
        return String(validating: output, as: UTF8.self)
    }

    static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// A parser for one flat JSON object (RFC 8259); nested objects and arrays are refused, and so
/// are duplicate names (two parsers could disagree on which one counts).
package enum FlatJSON {
    package static func parseObject(_ bytes: [UInt8]) -> [String: JSONValue]? {
        var parser = Parser(bytes: bytes)
        return parser.object()
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        mutating func object() -> [String: JSONValue]? {
            skipSpace()
            guard take(UInt8(ascii: "{")) else { return nil }
            var result: [String: JSONValue] = [:]
            skipSpace()
            if take(UInt8(ascii: "}")) { return finish(result) }
            while true {
                skipSpace()
                guard let key = string() else { return nil }
                skipSpace()
                guard take(UInt8(ascii: ":")) else { return nil }
                skipSpace()
                guard let value = value(), result.updateValue(value, forKey: key) == nil else { return nil }
                skipSpace()
                if take(UInt8(ascii: ",")) { continue }
                guard take(UInt8(ascii: "}")) else { return nil }
                return finish(result)
            }
        }

        private mutating func finish(_ result: [String: JSONValue]) -> [String: JSONValue]? {
            skipSpace()
            return index == bytes.count ? result : nil
        }

        private mutating func value() -> JSONValue? {
            guard index < bytes.count else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "\""): return string().map { .string($0) }
            case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
            case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
            case UInt8(ascii: "n"): return literal("null") ? .null : nil
            default: return number().map { .number($0) }
            }
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, exactly.
        private mutating func number() -> String? {
            let start = index
            _ = take(UInt8(ascii: "-"))
            if take(UInt8(ascii: "0")) {
                // A leading zero stands alone.
            } else {
                guard digits() > 0 else { return nil }
            }
            if take(UInt8(ascii: ".")) {
                guard digits() > 0 else { return nil }
            }
            if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
                _ = take(UInt8(ascii: "+")) || take(UInt8(ascii: "-"))
                guard digits() > 0 else { return nil }
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        private mutating func digits() -> Int {
            let start = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - start
        }

        private mutating func hexQuad() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var code: UInt32 = 0
            for byte in bytes[index..<index + 4] {
                guard let digit = FormURLEncoded.hex(byte) else { return nil }
                code = code << 4 | UInt32(digit)
            }
            index += 4
            return code
        }

        private mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            var output: [UInt8] = []
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(validating: output, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { return nil }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escape)
                    case UInt8(ascii: "n"): output.append(10)
                    case UInt8(ascii: "t"): output.append(9)
                    case UInt8(ascii: "r"): output.append(13)
                    case UInt8(ascii: "b"): output.append(8)
                    case UInt8(ascii: "f"): output.append(12)
                    case UInt8(ascii: "u"):
                        guard var code = hexQuad() else { return nil }
                        if (0xD800...0xDBFF).contains(code) {
                            // A high surrogate must be followed by an escaped low one.
                            guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")), let low = hexQuad(), (0xDC00...0xDFFF).contains(low) else { return nil }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        }
                        // A lone low surrogate is not a character: refused.
                        guard let scalar = Unicode.Scalar(code) else { return nil }
                        output.append(contentsOf: Array(String(Character(scalar)).utf8))
                    default: return nil
                    }
                case 0..<32:
                    return nil
                default:
                    output.append(byte)
                }
            }
            return nil
        }

        private mutating func literal(_ word: StaticString) -> Bool {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { return false }
            let matches = word.withUTF8Buffer { wordBytes in bytes[index..<index + count].elementsEqual(wordBytes) }
            guard matches else { return false }
            index += count
            return true
        }

        private mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        private mutating func skipSpace() {
            while index < bytes.count, bytes[index] == 32 || bytes[index] == 9 || bytes[index] == 10 || bytes[index] == 13 { index += 1 }
        }
    }
}
