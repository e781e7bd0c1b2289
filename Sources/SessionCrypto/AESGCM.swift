import CCrypto
import SessionCore

/// AES-256-GCM through libcrypto's EVP interface, 96-bit nonces (GCM's default IV length, so
/// none is set) and 128-bit tags. Each call makes and frees its own cipher context, so calls
/// are safe from any thread; every libcrypto return code goes through `check`, and a failure is
/// `nil` to the caller, never output.
enum AESGCM {
    static let keyByteCount = 32

    /// A libcrypto call that did not answer success.
    struct Failure: Error {
        let call: StaticString
    }

    /// `nonce ‖ ciphertext ‖ tag` of `plaintext` under `key` with `nonce` (12 bytes) and the
    /// authenticated data `aad`; `nil` when libcrypto fails or the sizes are wrong.
    static func seal(_ plaintext: [UInt8], key: [UInt8], nonce: [UInt8], aad: [UInt8]) -> [UInt8]? {
        guard key.count == keyByteCount, nonce.count == SealedValue.nonceByteCount else { return nil }
        return try? withContext { context throws(Failure) in
            try check(EVP_EncryptInit_ex(context, Self.cipher.algorithm, nil, key, nonce), "EVP_EncryptInit_ex")
            var length: Int32 = 0
            if !aad.isEmpty { try check(EVP_EncryptUpdate(context, nil, &length, aad, Int32(aad.count)), "EVP_EncryptUpdate") }
            var output = nonce + [UInt8](repeating: 0, count: plaintext.count + SealedValue.tagByteCount)
            var written = 0
            try output.withUnsafeMutableBufferPointer { buffer throws(Failure) in
                guard let base = buffer.baseAddress else { throw Failure(call: "buffer") }
                let body = base + SealedValue.nonceByteCount
                if !plaintext.isEmpty {
                    try check(EVP_EncryptUpdate(context, body, &length, plaintext, Int32(plaintext.count)), "EVP_EncryptUpdate")
                    written = Int(length)
                }
                try check(EVP_EncryptFinal_ex(context, body + written, &length), "EVP_EncryptFinal_ex")
                written += Int(length)
                guard written == plaintext.count else { throw Failure(call: "EVP_EncryptUpdate length") }
                try check(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(SealedValue.tagByteCount), body + written),
                          "EVP_CTRL_GCM_GET_TAG")
            }
            return output
        }
    }

    /// The plaintext of `payload` (`nonce ‖ ciphertext ‖ tag`) under `key` and `aad`; `nil` when
    /// the tag does not verify, the payload is too short, or libcrypto fails.
    static func open(_ payload: [UInt8], key: [UInt8], aad: [UInt8]) -> [UInt8]? {
        let nonceCount = SealedValue.nonceByteCount, tagCount = SealedValue.tagByteCount
        guard key.count == keyByteCount, payload.count >= nonceCount + tagCount else { return nil }
        let nonce = Array(payload[0..<nonceCount])
        let ciphertext = Array(payload[nonceCount..<(payload.count - tagCount)])
        var tag = Array(payload[(payload.count - tagCount)...])
        return try? withContext { context throws(Failure) in
            try check(EVP_DecryptInit_ex(context, Self.cipher.algorithm, nil, key, nonce), "EVP_DecryptInit_ex")
            var length: Int32 = 0
            if !aad.isEmpty { try check(EVP_DecryptUpdate(context, nil, &length, aad, Int32(aad.count)), "EVP_DecryptUpdate") }
            var plaintext = [UInt8](repeating: 0, count: ciphertext.count + tagCount)
            var written = 0
            try plaintext.withUnsafeMutableBufferPointer { buffer throws(Failure) in
                guard let base = buffer.baseAddress else { throw Failure(call: "buffer") }
                if !ciphertext.isEmpty {
                    try check(EVP_DecryptUpdate(context, base, &length, ciphertext, Int32(ciphertext.count)), "EVP_DecryptUpdate")
                    written = Int(length)
                }
                try check(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(tagCount), &tag), "EVP_CTRL_GCM_SET_TAG")
                // A tag that does not verify is the one failure expected in normal use.
                try check(EVP_DecryptFinal_ex(context, base + written, &length), "EVP_DecryptFinal_ex")
                written += Int(length)
            }
            guard written == ciphertext.count else { throw Failure(call: "EVP_DecryptUpdate length") }
            return Array(plaintext[0..<written])
        }
    }

    /// AES-256-GCM fetched from libcrypto's default provider once, instead of OpenSSL 3's
    /// implicit fetch on every call (a lookup that costs about as much as sealing a short value).
    private final class FetchedCipher: @unchecked Sendable {
        // @unchecked: `algorithm` is set once in init and never changed; a fetched EVP_CIPHER is
        // immutable and reference counted, and OpenSSL 3 documents it as usable by many threads
        // at once (crypto(7), "ALGORITHM FETCHING"). Kept for the life of the process.
        let algorithm: OpaquePointer?

        init() {
            let fetched = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil) ?? EVP_aes_256_gcm()
            // Nonces are passed without setting a length: only GCM's 12-byte default will do.
            algorithm = EVP_CIPHER_get_iv_length(fetched) == Int32(SealedValue.nonceByteCount)
                && EVP_CIPHER_get_key_length(fetched) == Int32(AESGCM.keyByteCount) ? fetched : nil
        }
    }

    private static let cipher = FetchedCipher()

    /// Runs `body` with a fresh cipher context, freed afterwards whatever happens.
    private static func withContext<T>(_ body: (OpaquePointer) throws(Failure) -> T) throws(Failure) -> T {
        guard cipher.algorithm != nil else { throw Failure(call: "EVP_CIPHER_fetch") }
        guard let context = EVP_CIPHER_CTX_new() else { throw Failure(call: "EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(context) }
        return try body(context)
    }

    /// libcrypto's EVP calls answer 1 for success.
    private static func check(_ status: Int32, _ call: StaticString) throws(Failure) {
        guard status == 1 else { throw Failure(call: call) }
    }
}
