extension String {
    /// At most `maximum` bytes of UTF-8 from the start, cut between Unicode scalars (never
    /// inside one). A cut by `Character` is no bound: one Character can carry any number of
    /// combining marks, so a 6 KB header passed a 256-character cut whole.
    public func prefix(utf8Bytes maximum: Int) -> String {
        guard utf8.count > maximum else { return self }
        var scalars = String.UnicodeScalarView()
        var bytes = 0
        for scalar in unicodeScalars {
            bytes += UTF8.width(scalar)
            if bytes > maximum { break }
            scalars.append(scalar)
        }
        return String(scalars)
    }
}
