/// The TCP peers allowed to talk FastCGI to the server: libfcgi's `FCGI_WEB_SERVER_ADDRS`
/// format (comma-separated IPv4 addresses), extended to IPv6 addresses and `/prefix` networks.
/// A connection from any other address is closed as soon as it is accepted.
///
/// Applies to TCP only: a Unix socket has no peer address, and its file permissions decide who
/// may connect.
public struct AllowedPeers: Equatable, Sendable, CustomStringConvertible {
    /// One address or network: the peers whose first `prefixLength` bits equal `network`'s.
    public struct Rule: Equatable, Sendable, CustomStringConvertible {
        let network: PeerAddress
        /// In the 128-bit form (an IPv4 /8 is 104 here).
        let prefixLength: Int

        public func matches(_ peer: PeerAddress) -> Bool {
            peer.masked(toPrefix: prefixLength) == network
        }

        public var description: String {
            if network.isIPv4 {
                return prefixLength == 128 ? "\(network)" : "\(network)/\(prefixLength - 96)"
            }
            return prefixLength == 128 ? "\(network)" : "\(network)/\(prefixLength)"
        }
    }

    /// Why a list could not be parsed, naming the entry.
    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public let entry: String
        public var description: String {
            "'\(entry)' is not an IPv4 or IPv6 address (optionally with /prefix)"
        }
    }

    public let rules: [Rule]

    /// 127.0.0.0/8 and ::1: the default when listening on TCP without a list.
    public static let loopback = AllowedPeers(rules: [
        Rule(network: PeerAddress(ipv4: 0x7f00_0000), prefixLength: 96 + 8),
        Rule(network: PeerAddress(high: 0, low: 1), prefixLength: 128),
    ])

    init(rules: [Rule]) {
        self.rules = rules
    }

    /// Parses `ADDR[,ADDR...]` where each ADDR is `192.0.2.7`, `2001:db8::7`, `[2001:db8::7]`,
    /// or a network such as `10.1.0.0/16` or `2001:db8::/32`. Spaces around entries are ignored;
    /// an empty list or entry is an error.
    public init(parsing text: String) throws(ParseError) {
        var rules: [Rule] = []
        for piece in text.split(separator: ",", omittingEmptySubsequences: false) {
            let entry = piece.trimmingSpaces
            guard let rule = Self.rule(entry) else { throw ParseError(entry: entry) }
            rules.append(rule)
        }
        self.rules = rules
    }

    private static func rule(_ entry: String) -> Rule? {
        var addressText = Substring(entry)
        var prefix: Int?
        if let slash = entry.firstIndex(of: "/") {
            guard let bits = Int(entry[entry.index(after: slash)...]), bits >= 0 else { return nil }
            prefix = bits
            addressText = entry[..<slash]
        }
        if addressText.hasPrefix("[") && addressText.hasSuffix("]") {
            addressText = addressText.dropFirst().dropLast()
        }
        guard !addressText.isEmpty, let address = PeerAddress(parsing: String(addressText)) else { return nil }
        // An IPv4-mapped address written in IPv6 form counts as IPv6 for its prefix length.
        let isDottedIPv4 = !addressText.contains(":")
        let maximum = isDottedIPv4 ? 32 : 128
        let bits = prefix ?? maximum
        guard bits <= maximum else { return nil }
        let length = isDottedIPv4 ? 96 + bits : bits
        return Rule(network: address.masked(toPrefix: length), prefixLength: length)
    }

    public func allows(_ peer: PeerAddress) -> Bool {
        rules.contains { $0.matches(peer) }
    }

    public var description: String { rules.map(\.description).joined(separator: ",") }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
