// OpenSSL's TLS client API for RedisClient's TLS transport. A few OpenSSL calls are macros,
// which Swift cannot call; the inline functions below are their function forms.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

static inline long copenssl_set_min_tls12(SSL_CTX *ctx) {
    return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}

static inline long copenssl_set_sni(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}

static inline long copenssl_disable_renegotiation_and_compression(SSL_CTX *ctx) {
    return SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
}

// Whether the error queue holds proof that the peer refused this client's TLS set-up: an alert
// it sent (certificate required, unknown CA, bad certificate, handshake failure, protocol
// version: OpenSSL's reasons from SSL_AD_REASON_OFFSET on), or a reply that is no TLS at all
// (wrong version number: a plain port). An end of file or a reset is no such proof: a Redis
// restarting, or a TLS proxy whose backend is down, closes connections too. Peeks only.
static inline int copenssl_reason_is_refusal(unsigned long code) {
    int reason = ERR_GET_REASON(code);
    return (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) || reason == SSL_R_WRONG_VERSION_NUMBER;
}
static inline int copenssl_peer_refused(void) {
    unsigned long first = ERR_peek_error(), last = ERR_peek_last_error();
    return (first != 0 && copenssl_reason_is_refusal(first)) || (last != 0 && copenssl_reason_is_refusal(last));
}
