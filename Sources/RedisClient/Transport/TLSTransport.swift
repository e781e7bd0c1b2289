import COpenSSL
import Glibc

/// TLS over a connected TCP socket: OpenSSL's `SSL` on the socket's blocking descriptor, so the
/// same `SO_RCVTIMEO`/`SO_SNDTIMEO` bounds every handshake step, read and write.
final class TLSTransport: RedisTransport {
    private let socket: SocketTransport
    private var ssl: OpaquePointer?

    /// Performs the handshake on `socket`, verifying the certificate chain and that the
    /// certificate names `host` (or the configured server name), unless verification is off.
    init(socket: SocketTransport, context: TLSContext, host: String) throws(RedisError) {
        self.socket = socket
        guard let ssl = SSL_new(context.context) else {
            socket.close()
            throw .connectFailed("TLS: \(TLSContext.errorQueue())")
        }
        self.ssl = ssl
        let name = context.configuration.serverName ?? host
        if !Self.isIPAddress(name) { _ = copenssl_set_sni(ssl, name) }
        if !context.configuration.insecure {
            let accepted: Int32
            if Self.isIPAddress(name) {
                accepted = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
            } else {
                accepted = SSL_set1_host(ssl, name)
            }
            guard accepted == 1 else {
                close()
                throw .connectFailed("TLS: cannot check the name \(name)")
            }
        }
        guard SSL_set_fd(ssl, socket.descriptor) == 1 else {
            close()
            throw .connectFailed("TLS: \(TLSContext.errorQueue())")
        }
        ERR_clear_error()
        let result = SSL_connect(ssl)
        guard result == 1 else {
            let verify = SSL_get_verify_result(ssl)
            if verify != X509_V_OK {
                let reason = String(cString: X509_verify_cert_error_string(verify))
                close()
                throw .tlsRefused("certificate verify failed: \(reason) (check --redis-tls-ca-file and --redis-tls-server-name)")
            }
            // An alert from the server (a client certificate required or not trusted, no
            // common protocol or cipher) or an answer that is no TLS is a refusal too; an end
            // of file, a reset or a timeout is not (a Redis restarting, a TLS proxy whose
            // backend is down).
            let refused = SSL_get_error(ssl, result) == SSL_ERROR_SSL && copenssl_peer_refused() == 1
            let reason = describe(result, whileConnecting: true)
            close()
            if refused { throw .tlsRefused("handshake refused: \(reason) (check --redis-tls-cert-file and --redis-tls-key-file)") }
            // A plain-text Redis waits for a command and never answers a TLS hello: the
            // handshake times out rather than being refused.
            throw .connectFailed("TLS handshake failed: \(reason) (if this port speaks plain Redis, use a redis:// URL, not rediss://)")
        }
    }

    deinit { close() }

    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(RedisError) {
        guard let ssl, let base = bytes.baseAddress else { return }
        var sent = 0
        while sent < bytes.count {
            ERR_clear_error()
            let count = SSL_write(ssl, base + sent, Int32(min(bytes.count - sent, Int(Int32.max))))
            guard count > 0 else { throw failure(count, reading: false) }
            sent += Int(count)
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(RedisError) -> Int {
        guard let ssl else { throw .connectionLost("TLS connection closed") }
        ERR_clear_error()
        let count = SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
        guard count > 0 else { throw failure(count, reading: true) }
        return Int(count)
    }

    /// Idle TLS sockets may hold records that are no application data (TLS 1.3 session tickets
    /// arrive after the handshake): a readable socket is peeked without blocking, and counts as
    /// healthy when no data and no close came out of it.
    func isIdleAndHealthy() -> Bool {
        guard let ssl else { return false }
        if SSL_pending(ssl) > 0 { return false }
        if socket.isIdleAndHealthy() { return true }
        let descriptor = socket.descriptor
        let flags = fcntl(descriptor, F_GETFL)
        guard flags >= 0, fcntl(descriptor, F_SETFL, flags | O_NONBLOCK) == 0 else { return false }
        defer { _ = fcntl(descriptor, F_SETFL, flags) }
        var byte: UInt8 = 0
        ERR_clear_error()
        let count = SSL_peek(ssl, &byte, 1)
        if count > 0 { return false }
        let error = SSL_get_error(ssl, count)
        return error == SSL_ERROR_WANT_READ && socket.isIdleAndHealthy()
    }

    func close() {
        if let ssl {
            SSL_free(ssl)
            self.ssl = nil
        }
        socket.close()
    }

    private func failure(_ result: Int32, reading: Bool) -> RedisError {
        let code = errno
        guard let ssl else { return .connectionLost("TLS connection closed") }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_ZERO_RETURN:
            return .connectionLost("connection closed by the server")
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .timedOut
        case SSL_ERROR_SYSCALL:
            if code == EAGAIN || code == EWOULDBLOCK { return .timedOut }
            return .connectionLost(code == 0 ? "connection closed by the server" : "TLS \(reading ? "read" : "write"): \(String(cString: strerror(code)))")
        default:
            // An alert read after the handshake: TLS 1.3 servers refuse a missing or untrusted
            // client certificate only once the handshake is over, on the first read.
            if copenssl_peer_refused() == 1 {
                return .tlsRefused("the server refused this client (\(TLSContext.errorQueue())); check --redis-tls-cert-file and --redis-tls-key-file")
            }
            return .connectionLost("TLS \(reading ? "read" : "write"): \(TLSContext.errorQueue())")
        }
    }

    private func describe(_ result: Int32, whileConnecting: Bool) -> String {
        let code = errno
        guard let ssl else { return "closed" }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return "timed out"
        case SSL_ERROR_SYSCALL:
            if code == EAGAIN || code == EWOULDBLOCK { return "timed out" }
            return code == 0 ? "the server closed the connection (is it speaking TLS?)" : String(cString: strerror(code))
        default: return TLSContext.errorQueue()
        }
    }

    private static func isIPAddress(_ name: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, name, &v4) == 1 || inet_pton(AF_INET6, name, &v6) == 1
    }
}
