import SessionApp

extension FuzzTarget {
    /// A request body sent as `application/json`.
    static let json = FuzzTarget(
        name: "json",
        summary: "JSON body → FlatJSON.parseObject; what the app writes with JSON re-parses to the same values",
        check: JSONProperties.check
    )
}

/// Properties of the flat JSON parser and of the JSON the app writes.
enum JSONProperties {
    static func check(_ input: UnsafeRawBufferPointer) throws(PropertyViolation) {
        let bytes = Array(input)
        if let object = FlatJSON.parseObject(bytes) {
            // Accepted input is an object: `{` … `}` with only JSON whitespace around it.
            let trimmed = bytes.drop { isSpace($0) }.reversed().drop { isSpace($0) }
            try expect(bytes.drop { isSpace($0) }.first == UInt8(ascii: "{") && trimmed.first == UInt8(ascii: "}"),
                       "only an object is accepted")
            // Written back as the app writes JSON, it parses to the same object.
            let written = write(object)
            try expect(FlatJSON.parseObject(written) == object, "a parsed object written back re-parses to itself", show(written))
            for value in object.values {
                if case .number(let text) = value {
                    try expect(FlatJSON.parseObject(Array("{\"n\":\(text)}".utf8)) == ["n": value], "a number's text is a number", text)
                }
            }
            // A name given twice is refused (two parsers could disagree on which counts).
            if let (key, _) = object.first {
                let twice = Array(written.dropLast()) + Array(",\(JSON.quoted(key)):null}".utf8)
                try expect(FlatJSON.parseObject(twice) == nil, "a repeated name is refused", show(twice))
            }
        }
        // Any text the app quotes comes back unchanged, whatever it holds (control characters,
        // quotes, backslashes, non-BMP characters, invalid UTF-8 repaired first).
        let text = String(decoding: bytes, as: UTF8.self)
        let quoted = JSON.quoted(text)
        try expect(!quoted.utf8.dropFirst().dropLast().contains { $0 < 0x20 }, "quoted text holds no raw control character")
        let one = JSON.object([("value", quoted)])
        try expect(FlatJSON.parseObject(one) == ["value": .string(text)], "quoted text re-parses to itself", show(one))
        let fields = Dictionary(text.split(separator: "&").map { (String($0.prefix(16)), String($0)) }, uniquingKeysWith: { first, _ in first })
        let map = Array(JSON.stringObject(fields).utf8)
        try expect(FlatJSON.parseObject(map) == fields.mapValues { JSONValue.string($0) }, "a string map re-parses to itself", show(map))
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 || byte == 10 || byte == 13 }

    /// The object as the app's JSON writer renders it.
    private static func write(_ object: [String: JSONValue]) -> [UInt8] {
        JSON.object(object.sorted { $0.key < $1.key }.map { key, value in
            switch value {
            case .string(let text): (key, JSON.quoted(text))
            case .number(let text): (key, text)
            case .bool(let flag): (key, flag ? "true" : "false")
            case .null: (key, "null")
            }
        })
    }
}
