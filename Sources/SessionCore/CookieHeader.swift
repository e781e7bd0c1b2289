/// Reads a request's `Cookie` header (RFC 6265 §4.2: `name=value` pairs separated by `;`).
public enum CookieHeader {
    /// Every value sent under `name`, in header order, with optional double quotes removed.
    /// Pairs without `=` and empty names are skipped; nothing here throws or traps.
    public static func values(named name: String, in header: String) -> [Substring] {
        var result: [Substring] = []
        for pair in header.split(separator: ";", omittingEmptySubsequences: true) {
            guard let equals = pair.firstIndex(of: "=") else { continue }
            guard trimmed(pair[..<equals]) == name else { continue }
            var value = trimmed(pair[pair.index(after: equals)...])
            if value.count >= 2, value.first == "\"", value.last == "\"" {
                value = value.dropFirst().dropLast()
            }
            result.append(value)
        }
        return result
    }

    private static func trimmed(_ text: Substring) -> Substring {
        var text = text
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}
