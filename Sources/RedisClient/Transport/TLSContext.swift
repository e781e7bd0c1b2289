import COpenSSL
import Glibc

/// An OpenSSL client context configured once from a `RedisTLSConfiguration` (trust store, client
/// certificate, TLS 1.2 or later, peer verification), shared by the connections of one
/// `RedisClient` — so by one thread; it owns its `SSL_CTX` and frees it in one place.
final class TLSContext {
    let configuration: RedisTLSConfiguration
    let context: OpaquePointer

    init(_ configuration: RedisTLSConfiguration) throws(RedisError) {
        guard let method = TLS_client_method(), let context = SSL_CTX_new(method) else {
            throw .connectFailed("TLS: cannot create a context: \(TLSContext.errorQueue())")
        }
        self.configuration = configuration
        self.context = context
        guard copenssl_set_min_tls12(context) == 1 else { throw .connectFailed("TLS: cannot require TLS 1.2") }
        _ = copenssl_disable_renegotiation_and_compression(context)
        if let caFile = configuration.caFile {
            guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
                throw .connectFailed("TLS: cannot load CA file \(caFile): \(TLSContext.errorQueue())")
            }
        } else if SSL_CTX_set_default_verify_paths(context) != 1 {
            throw .connectFailed("TLS: cannot load the system trust store: \(TLSContext.errorQueue())")
        }
        if let certificate = configuration.certificateFile {
            guard SSL_CTX_use_certificate_chain_file(context, certificate) == 1 else {
                throw .connectFailed("TLS: cannot load client certificate \(certificate): \(TLSContext.errorQueue())")
            }
            let key = configuration.keyFile ?? certificate
            guard SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) == 1, SSL_CTX_check_private_key(context) == 1 else {
                throw .connectFailed("TLS: cannot load client key \(key): \(TLSContext.errorQueue())")
            }
        }
        SSL_CTX_set_verify(context, configuration.insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nil)
    }

    deinit { SSL_CTX_free(context) }

    /// Drains OpenSSL's error queue of this thread into one line.
    static func errorQueue() -> String {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages.isEmpty ? "unknown error" : messages.joined(separator: "; ")
    }
}
