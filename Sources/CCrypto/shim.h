// libcrypto (OpenSSL 3): HMAC-SHA256, SHA-256, PBKDF2, AES-256-GCM (EVP), random bytes and
// constant-time comparison.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
