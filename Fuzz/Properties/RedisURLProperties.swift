import RedisClient

extension FuzzTarget {
    /// A Redis URL as an operator writes it (`--redis-url`, `REDIS_URL`), and `host:port` as
    /// cluster redirections carry it.
    static let redisURL = FuzzTarget(
        name: "redis-url",
        summary: "text → RedisConfiguration(url:), RedisAddress(hostAndPort:), ClusterRedirect; descriptions re-parse",
        check: RedisURLProperties.check
    )
}

/// Properties of the configuration and address parsers.
enum RedisURLProperties {
    static func check(_ input: UnsafeRawBufferPointer) throws(PropertyViolation) {
        let text = String(decoding: input, as: UTF8.self)
        if let configuration = try? RedisConfiguration(url: text) {
            try checkConfiguration(configuration, url: text)
        }
        if let address = RedisAddress(hostAndPort: text) {
            guard case .tcp(let host, let port) = address else {
                throw PropertyViolation(property: "host:port makes a TCP address", detail: "")
            }
            try expect(!host.isEmpty && (1...65535).contains(port), "an address has a host and a port in range", "\(address)")
            try expect(RedisAddress(hostAndPort: address.description) == address, "an address written back reads back", address.description)
        }
        for prefix in ["MOVED 1 ", "ASK 16383 "] {
            if let redirect = ClusterRedirect(RedisServerError(message: prefix + text)) {
                // Spaces around the words do not count.
                let words = text.split(separator: " ")
                try expect(words.count == 1 && RedisAddress(hostAndPort: words[0]) == redirect.address,
                           "a redirection's address is its host:port", text)
            }
        }
    }

    /// A parsed configuration is usable (ports in range, non-empty hosts, a database only where
    /// one exists), its description carries no credentials, and the description parses back to
    /// the same deployment.
    private static func checkConfiguration(_ configuration: RedisConfiguration, url: String) throws(PropertyViolation) {
        let description = configuration.description
        let addresses: [RedisAddress]
        switch configuration.topology {
        case .single(let address): addresses = [address]
        case .cluster(let seeds):
            addresses = seeds
            try expect(configuration.database == 0, "a cluster uses database 0")
        case .sentinel(let sentinels, let name):
            addresses = sentinels
            try expect(!name.isEmpty, "a Sentinel deployment names its master")
        }
        try expect(!addresses.isEmpty, "a deployment has an address")
        try expect(configuration.database >= 0, "the database number is not negative")
        for address in addresses {
            switch address {
            case .tcp(let host, let port):
                try expect(!host.isEmpty && (1...65535).contains(port), "hosts are named and ports in range", "\(address)")
                try expect(!description.contains("@"), "the description carries no credentials", description)
            case .unix(let path):
                try expect(path.hasPrefix("/") && path.count > 1, "a socket path is absolute", path)
            }
        }
        try expect((configuration.tls != nil) == url.lowercased().hasPrefix("rediss"), "TLS exactly for rediss schemes")
        let reparsed: RedisConfiguration
        do {
            reparsed = try RedisConfiguration(url: description)
        } catch {
            throw PropertyViolation(property: "the description parses back", detail: "\(show(url.utf8)) → \(show(description.utf8)): \(error)")
        }
        var expected = configuration
        expected.username = nil
        expected.password = nil
        try expect(reparsed == expected, "the description parses back to the same deployment", "\(show(url.utf8)) → \(show(description.utf8))")
    }
}
