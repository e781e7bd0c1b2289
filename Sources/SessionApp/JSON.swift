/// The few JSON shapes the app writes, built without Foundation (the hot path stays small).
package enum JSON {
    /// A JSON string literal with the required escapes.
    package static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// `{"key":N}` built straight into bytes (the `/count` body).
    static func integerObject(_ key: String, _ value: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(key.utf8.count + 24)
        bytes.append(contentsOf: "{\"".utf8)
        bytes.append(contentsOf: key.utf8)
        bytes.append(contentsOf: "\":".utf8)
        bytes.append(contentsOf: String(value).utf8)
        bytes.append(UInt8(ascii: "}"))
        return bytes
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
