// libcrypto (OpenSSL 3): HMAC-SHA256, PBKDF2 and constant-time comparison only.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
