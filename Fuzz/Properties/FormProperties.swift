import SessionApp

extension FuzzTarget {
    /// A request body (or query string) sent as `application/x-www-form-urlencoded`.
    static let form = FuzzTarget(
        name: "form",
        summary: "form body → FormURLEncoded.parse/decode; encode → decode and encode → parse round trips",
        check: FormProperties.check
    )
}

/// Properties of the form parser and the percent-encoder.
enum FormProperties {
    static func check(_ input: UnsafeRawBufferPointer) throws(PropertyViolation) {
        let bytes = Array(input)
        let fields = FormURLEncoded.parse(bytes)
        // Each field is the first pair in the body whose name decodes to it and whose value
        // decodes.
        for (name, value) in fields {
            let first = bytes.split(separator: UInt8(ascii: "&")).lazy.compactMap { pair -> String? in
                let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
                guard FormURLEncoded.decode(parts[0]) == name else { return nil }
                return parts.count == 1 ? "" : FormURLEncoded.decode(parts[1])
            }.first
            try expect(first == value, "every field is the first decodable pair with its name", show(name.utf8))
        }
        // Written back encoded, the fields parse to themselves.
        let written = fields.sorted { $0.key < $1.key }
            .map { FormURLEncoded.encode($0.key) + "=" + FormURLEncoded.encode($0.value) }
            .joined(separator: "&")
        try expect(FormURLEncoded.parse(Array(written.utf8)) == fields, "parsed fields written back re-parse to themselves", show(written.utf8))

        // encode → decode is the identity, and encode leaves only unreserved bytes and %XX.
        let text = String(decoding: bytes, as: UTF8.self)
        let encoded = Array(FormURLEncoded.encode(text).utf8)
        try expect(FormURLEncoded.decode(encoded[...]) == text, "decode(encode(text)) == text", show(bytes))
        var index = 0
        while index < encoded.count {
            let byte = encoded[index]
            if byte == UInt8(ascii: "%") {
                try expect(index + 2 < encoded.count && isUpperHex(encoded[index + 1]) && isUpperHex(encoded[index + 2]),
                           "encode writes %XX with upper-case hex", show(encoded))
                index += 3
            } else {
                try expect(isUnreserved(byte), "encode leaves only A-Z a-z 0-9 - . _ ~ / unescaped", show(encoded))
                index += 1
            }
        }
        // Names and values of any text survive a form built with encode.
        let pieces = text.split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init)
        var expected: [String: String] = [:]
        var form: [String] = []
        for (offset, value) in pieces.enumerated() {
            let name = offset.isMultiple(of: 2) ? value : "k\(offset)"
            guard !name.isEmpty else { continue }
            if expected[name] == nil { expected[name] = value }
            form.append(FormURLEncoded.encode(name) + "=" + FormURLEncoded.encode(value))
        }
        let joined = form.joined(separator: "&")
        try expect(FormURLEncoded.parse(Array(joined.utf8)) == expected, "a form built with encode parses back, first value wins", show(joined.utf8))
        // Without % or +, decoding is plain UTF-8 validation.
        if !bytes.contains(UInt8(ascii: "%")) && !bytes.contains(UInt8(ascii: "+")) {
            try expect(FormURLEncoded.decode(bytes[...]) == String(validating: bytes, as: UTF8.self), "decode without escapes is UTF-8 validation")
        }
    }

    private static func isUpperHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
            return true
        default:
            return false
        }
    }
}
