import Glibc

/// Reads configuration files that hold secrets or lists (Redis password, admin token, signing
/// keys, users): whole-file reads with a size bound, decoded as UTF-8, never logged.
enum ConfigurationFile {
    /// The largest configuration file read (users files included).
    static let maximumBytes = 16 << 20

    /// Why a file could not be used.
    enum Problem: Error, Equatable, CustomStringConvertible {
        case unreadable(String, errno: Int32)
        case notAFile(String)
        case tooLarge(String)
        case notUTF8(String)

        var description: String {
            switch self {
            case .unreadable(let path, let code): return "cannot read \(path): \(String(cString: strerror(code)))"
            case .notAFile(let path): return "\(path) is not a regular file"
            case .tooLarge(let path): return "\(path) is larger than \(maximumBytes) bytes"
            case .notUTF8(let path): return "\(path) is not UTF-8 text"
            }
        }
    }

    /// The whole file as UTF-8 text.
    static func text(at path: String) throws(Problem) -> String {
        let bytes = try bytes(at: path)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .notUTF8(path) }
        return text
    }

    /// The whole regular file's bytes, at most `limit` of them.
    static func bytes(at path: String, limit: Int = maximumBytes) throws(Problem) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .unreadable(path, errno: errno) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .unreadable(path, errno: errno) }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw .notAFile(path) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path, errno: errno)
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            if bytes.count > limit { throw .tooLarge(path) }
        }
        return bytes
    }

    /// A one-value secret file: the text without trailing line breaks and spaces.
    static func secret(at path: String) throws(Problem) -> String {
        var value = Substring(try text(at: path))
        while let last = value.last, last == "\n" || last == "\r" || last == " " || last == "\t" { value.removeLast() }
        return String(value)
    }

    /// Whether users other than the owner may read the file (a warning for secrets).
    static func isReadableByOthers(_ path: String) -> Bool {
        var status = stat()
        guard stat(path, &status) == 0 else { return false }
        return status.st_mode & (S_IROTH | S_IWOTH) != 0
    }
}
