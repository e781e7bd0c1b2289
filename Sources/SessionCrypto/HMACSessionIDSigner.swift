import SessionCore

/// Signs session ids with HMAC-SHA256: the first key signs, every key verifies, so keys rotate
/// without logging anyone out. Fails closed: a libcrypto error is an invalid signature.
public struct HMACSessionIDSigner: SessionIDSigner {
    private let keys: [[UInt8]]

    /// `keys` must not be empty; the first signs.
    public init?(keys: [[UInt8]]) {
        guard !keys.isEmpty, keys.allSatisfy({ !$0.isEmpty }) else { return nil }
        self.keys = keys
    }

    public var signatureLength: Int { 32 }

    public func signature(of id: SessionID) -> [UInt8]? {
        guard let key = keys.first else { return nil }
        return SessionCrypto.hmacSHA256(key: key, message: Array(id.rawValue.utf8))
    }

    public func isValid(_ signature: [UInt8], for id: SessionID) -> Bool {
        let message = Array(id.rawValue.utf8)
        var valid = false
        // Every key is tried, whatever matched, so timing does not tell which key signed.
        for key in keys {
            guard let expected = SessionCrypto.hmacSHA256(key: key, message: message) else { continue }
            if SessionCrypto.constantTimeEqual(expected, signature) { valid = true }
        }
        return valid
    }
}
