import CCrypto

/// HMAC-SHA256 and friends from the system's libcrypto (OpenSSL), behind a Swift API.
public enum SessionCrypto {
    /// HMAC-SHA256 of `message` under `key` (32 bytes), or `nil` when libcrypto fails: callers
    /// must then refuse (a failed HMAC must never look like a signature of zeros).
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8]? {
        var output = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let result = key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                output.withUnsafeMutableBytes { outputBytes in
                    HMAC(EVP_sha256(), keyBytes.baseAddress, Int32(keyBytes.count),
                         messageBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), messageBytes.count,
                         outputBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), &length)
                }
            }
        }
        guard result != nil, length == 32 else { return nil }
        return output
    }

    /// PBKDF2-HMAC-SHA256 of `password` with `salt`, `iterations` rounds, `length` bytes.
    /// Returns nil if libcrypto refuses (it does not for sane arguments).
    public static func pbkdf2SHA256(password: [UInt8], salt: [UInt8], iterations: Int, length: Int = 32) -> [UInt8]? {
        var output = [UInt8](repeating: 0, count: length)
        let status = password.withUnsafeBytes { passwordBytes in
            salt.withUnsafeBytes { saltBytes in
                output.withUnsafeMutableBytes { outputBytes in
                    PKCS5_PBKDF2_HMAC(passwordBytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(passwordBytes.count),
                                      saltBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(saltBytes.count),
                                      Int32(iterations), EVP_sha256(), Int32(length),
                                      outputBytes.baseAddress?.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        return status == 1 ? output : nil
    }

    /// Equality in time that depends only on the length (no early exit on the first difference).
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { aBytes in
            b.withUnsafeBytes { bBytes in
                CRYPTO_memcmp(aBytes.baseAddress, bBytes.baseAddress, aBytes.count) == 0
            }
        }
    }

    /// `count` bytes from the OS CSPRNG (through libcrypto's RAND_bytes).
    public static func randomBytes(_ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        let status = bytes.withUnsafeMutableBytes { RAND_bytes($0.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(count)) }
        return status == 1 ? bytes : nil
    }
}

extension SessionCrypto {
    /// SHA-256 of `message` (32 bytes).
    public static func sha256(_ message: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: 32)
        message.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { digest in
                _ = SHA256(input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count,
                           digest.baseAddress?.assumingMemoryBound(to: UInt8.self))
            }
        }
        return output
    }
}
