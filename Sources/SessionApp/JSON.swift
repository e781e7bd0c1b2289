/// The few JSON shapes the app writes, built without Foundation (the hot path stays small).
package enum JSON {
    /// A JSON string literal with the required escapes, and DEL escaped too (so a log line
    /// written with it carries no control character at all).
    package static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// `{"key":N}` built straight into bytes (the `/count` body): one allocation, no String.
    static func integerObject(_ key: String, _ value: Int64) -> [UInt8] {
        var key = key
        return key.withUTF8 { name in
            [UInt8](unsafeUninitializedCapacity: name.count + 25) { bytes, initialized in
                var index = 0
                func put(_ byte: UInt8) {
                    bytes[index] = byte
                    index += 1
                }
                put(UInt8(ascii: "{"))
                put(UInt8(ascii: "\""))
                for byte in name { put(byte) }
                put(UInt8(ascii: "\""))
                put(UInt8(ascii: ":"))
                if value < 0 { put(UInt8(ascii: "-")) }
                var magnitude = value.magnitude
                let start = index
                repeat {
                    put(UInt8(ascii: "0") + UInt8(magnitude % 10))
                    magnitude /= 10
                } while magnitude > 0
                bytes[start..<index].reverse()
                put(UInt8(ascii: "}"))
                initialized = index
            }
        }
    }

    /// `{"key":"value",…}` with keys sorted, for string maps.
    package static func stringObject(_ values: [String: String]) -> String {
        String(decoding: object(values.sorted { $0.key < $1.key }.map { ($0.key, quoted($0.value)) }), as: UTF8.self)
    }

    /// `{"key":value,…}` from already-encoded values.
    package static func object(_ members: [(String, String)]) -> [UInt8] {
        var text = "{"
        for (index, member) in members.enumerated() {
            if index > 0 { text += "," }
            text += quoted(member.0) + ":" + member.1
        }
        text += "}"
        return Array(text.utf8)
    }
}
