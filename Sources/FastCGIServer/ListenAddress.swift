/// Where the FastCGI server accepts connections.
public enum ListenAddress: Equatable, Sendable, CustomStringConvertible {
    /// The listening socket spawn-fcgi (or systemd) hands over on file descriptor 0.
    case inherited
    /// A TCP address; `host` `nil` binds every interface.
    case tcp(host: String?, port: Int)
    /// A Unix domain socket path.
    case unix(path: String)

    /// Parses `HOST:PORT`, `:PORT`, `unix:/path` or an absolute path; `nil` for anything else.
    public init?(parsing text: String) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            guard path.hasPrefix("/") else { return nil }
            self = .unix(path: path)
        } else if text.hasPrefix("/") {
            self = .unix(path: text)
        } else if let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) {
            let host = String(text[..<colon])
            self = .tcp(host: host.isEmpty ? nil : host, port: port)
        } else {
            return nil
        }
    }

    /// The form libfcgi's `FCGX_OpenSocket` takes.
    var socketPath: String? {
        switch self {
        case .inherited: return nil
        case .tcp(let host, let port): return (host ?? "") + ":" + String(port)
        case .unix(let path): return path
        }
    }

    public var description: String {
        switch self {
        case .inherited: return "inherited socket on fd 0"
        case .tcp(let host, let port): return (host ?? "*") + ":" + String(port)
        case .unix(let path): return "unix:" + path
        }
    }
}
