/// Signs session ids for cookies (`<id>.<signature>`), so a cookie that was not issued by the
/// service is refused before any store is asked. `SessionCrypto.HMACSessionIDSigner` is the
/// production implementation; the core only knows this protocol.
public protocol SessionIDSigner: Sendable {
    /// Bytes in every signature.
    var signatureLength: Int { get }
    /// The signature of `id` under the signing key; `nil` when it cannot be computed, in which
    /// case the caller must not issue a cookie.
    func signature(of id: SessionID) -> [UInt8]?
    /// Whether `signature` was made for `id` by any of the verifying keys. Compares in constant
    /// time and fails closed: any internal error answers `false`.
    func isValid(_ signature: [UInt8], for id: SessionID) -> Bool
}
