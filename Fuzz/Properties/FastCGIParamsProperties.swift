import CFastCGI
import FastCGIServer
import Glibc

extension FuzzTarget {
    /// The body of a FastCGI `PARAMS` stream (name-value pairs with 1- or 4-byte lengths, as
    /// nginx writes them), turned into the `NAME=VALUE` array libfcgi hands over.
    static let fastCGIParams = FuzzTarget(
        name: "fastcgi-params",
        summary: "PARAMS stream → libfcgi-shaped envp → FastCGIParams(copyingEnvironment:), append, subscripts, forEachValue",
        check: FastCGIParamsProperties.check
    )
}

/// Properties of `FastCGIParams` on the environment libfcgi would build from one PARAMS stream.
enum FastCGIParamsProperties {
    static func check(_ input: UnsafeRawBufferPointer) throws(PropertyViolation) {
        let entries = environmentEntries(fromParamsStream: input)
        try withEnvironment(entries) { envp throws(PropertyViolation) in
            try checkCopy(of: envp)
        }
    }

    /// What libfcgi's `ReadParams` makes of a PARAMS stream: one `malloc`ed `NAME=VALUE\0`
    /// string per pair, after `FCGI_ROLE=RESPONDER`, which it adds first. Names and values are
    /// copied as sent, `=` and NUL bytes included; a pair cut short by the end of the stream is
    /// dropped, as libfcgi drops it.
    static func environmentEntries(fromParamsStream input: UnsafeRawBufferPointer) -> [[UInt8]] {
        var entries: [[UInt8]] = [Array("FCGI_ROLE=RESPONDER".utf8)]
        var index = 0
        func length() -> Int? {
            guard index < input.count else { return nil }
            if input[index] < 0x80 {
                index += 1
                return Int(input[index - 1])
            }
            guard index + 4 <= input.count else { return nil }
            let value = Int(input[index] & 0x7F) << 24 | Int(input[index + 1]) << 16 | Int(input[index + 2]) << 8 | Int(input[index + 3])
            index += 4
            return value
        }
        while let nameLength = length(), let valueLength = length() {
            guard nameLength <= input.count - index, valueLength <= input.count - index - nameLength else { break }
            var entry = Array(input[index..<index + nameLength])
            entry.append(UInt8(ascii: "="))
            entry.append(contentsOf: input[index + nameLength..<index + nameLength + valueLength])
            entries.append(entry)
            index += nameLength + valueLength
        }
        return entries
    }

    /// Lends `body` a NULL-terminated array of C strings holding `entries`, as libfcgi lays
    /// them out (each its own allocation, NUL-terminated).
    static func withEnvironment<Result>(_ entries: [[UInt8]],
                                        _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) throws(PropertyViolation) -> Result) throws(PropertyViolation) -> Result {
        let envp = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: entries.count + 1)
        for (index, entry) in entries.enumerated() {
            let string = UnsafeMutablePointer<CChar>.allocate(capacity: entry.count + 1)
            entry.withUnsafeBytes { raw in
                if let base = raw.baseAddress { memcpy(string, base, entry.count) }
            }
            string[entry.count] = 0
            envp[index] = string
        }
        envp[entries.count] = nil
        defer {
            for index in 0..<entries.count { envp[index]?.deallocate() }
            envp.deallocate()
        }
        return try body(envp)
    }

    /// The copy keeps every `NAME=VALUE` entry (as C strings: up to the first NUL) in order,
    /// split at the first `=`; entries without `=` are left out. Every lookup agrees with that
    /// list and with libfcgi's own `FCGX_GetParam`, and params built with either `append`
    /// behave the same.
    static func checkCopy(of envp: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) throws(PropertyViolation) {
        var model: [(name: [UInt8], value: [UInt8])] = []
        var cursor = envp
        while let entry = cursor.pointee {
            let bytes = Array(UnsafeBufferPointer(start: UnsafeRawPointer(entry).assumingMemoryBound(to: UInt8.self), count: strlen(entry)))
            if let equals = bytes.firstIndex(of: UInt8(ascii: "=")) {
                model.append((Array(bytes[..<equals]), Array(bytes[(equals + 1)...])))
            }
            cursor += 1
        }

        let copied = FastCGIParams(copyingEnvironment: envp)
        var appendedEntries = FastCGIParams()
        var appendedPairs = FastCGIParams()
        for (name, value) in model {
            let entry = name + [UInt8(ascii: "=")] + value
            entry.withUnsafeBytes { appendedEntries.append(entry: $0, separatorAt: name.count) }
            appendedPairs.append(name: name, value: value)
        }

        for params in [copied, appendedEntries, appendedPairs] {
            try expect(params.count == model.count, "one param per entry with '='", "\(params.count) params, \(model.count) entries")
            let all = params.all
            for (index, entry) in model.enumerated() where index < all.count {
                try expect(all[index].name == String(decoding: entry.name, as: UTF8.self)
                           && all[index].value == String(decoding: entry.value, as: UTF8.self),
                           "params keep order, names and values", "entry \(index): \(show(entry.name))=\(show(entry.value))")
            }
            var names: [[UInt8]] = model.map(\.name)
            names += [Array("HTTP_COOKIE".utf8), Array("CONTENT_LENGTH".utf8), [], Array("FCGI_ROLE".utf8)]
            var looked: Set<[UInt8]> = []
            for name in names where looked.insert(name).inserted {
                // Names reach the lookups as Strings: only those that are valid UTF-8 can be asked for.
                guard let text = String(validating: name, as: UTF8.self) else { continue }
                try checkLookups(params, name: text, model: model, envp: envp)
            }
        }
    }

    private static func checkLookups(_ params: FastCGIParams, name: String, model: [(name: [UInt8], value: [UInt8])],
                                     envp: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) throws(PropertyViolation) {
        let wanted = Array(name.utf8)
        let values = model.filter { $0.name == wanted }.map(\.value)
        let first = values.first
        let label = show(wanted)

        try expect(params[name] == first.map { String(decoding: $0, as: UTF8.self) }, "subscript is the first value", label)
        try expect(params.length(of: name) == first?.count, "length(of:) is the first value's length", label)
        let lent = params.withValue(of: name) { buffer in buffer.map(Array.init) }
        try expect(lent == first, "withValue lends the first value's bytes", label)
        if let first, let firstText = String(validating: first, as: UTF8.self) {
            try expect(params.has(name, equalTo: firstText), "has(_:equalTo:) the first value", label)
        }
        try expect(!params.has(name, equalTo: "\u{0}never sent\u{0}"), "has(_:equalTo:) is false for other values", label)
        var visited: [[UInt8]] = []
        params.forEachValue(of: name) { visited.append(Array($0)) }
        try expect(visited == values, "forEachValue visits every value in order", label)
        try expect(params.values(of: name) == values.map { String(decoding: $0, as: UTF8.self) }, "values(of:) lists every value", label)

        // libfcgi's own lookup: the first entry starting with NAME=. It can only be asked for
        // names without NUL (C strings).
        if !wanted.contains(0) {
            let fromLibfcgi = name.withCString { FCGX_GetParam($0, envp) }.map { pointer in
                Array(UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: strlen(pointer)))
            }
            try expect(fromLibfcgi == first, "the first value is the one FCGX_GetParam returns", label)
        }
    }
}
