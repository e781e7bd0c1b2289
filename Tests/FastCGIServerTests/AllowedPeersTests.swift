import Glibc
import XCTest
@testable import FastCGIServer

final class AllowedPeersTests: XCTestCase {
    private func peer(_ text: String) throws -> PeerAddress {
        try XCTUnwrap(PeerAddress(parsing: text), text)
    }

    func testSingleAddressAllowsOnlyItself() throws {
        let peers = try AllowedPeers(parsing: "127.0.0.2")
        XCTAssertTrue(peers.allows(try peer("127.0.0.2")))
        XCTAssertFalse(peers.allows(try peer("127.0.0.1")))
        XCTAssertFalse(peers.allows(try peer("127.0.0.3")))
        XCTAssertFalse(peers.allows(try peer("::1")))
    }

    func testListWithSpacesNetworksAndIPv6() throws {
        let peers = try AllowedPeers(parsing: "10.1.0.0/16, 192.0.2.7 ,2001:db8::/32,[fe80::1]")
        for allowed in ["10.1.0.1", "10.1.255.254", "192.0.2.7", "2001:db8::1", "2001:db8:ffff::9", "fe80::1"] {
            XCTAssertTrue(peers.allows(try peer(allowed)), allowed)
        }
        for refused in ["10.2.0.1", "192.0.2.8", "2001:db9::1", "fe80::2", "::1", "127.0.0.1"] {
            XCTAssertFalse(peers.allows(try peer(refused)), refused)
        }
        XCTAssertEqual(peers.description, "10.1.0.0/16,192.0.2.7,2001:db8::/32,fe80::1")
    }

    /// A peer reaching an IPv6 socket over IPv4 appears as ::ffff:a.b.c.d; it is the same peer.
    func testIPv4MappedPeersMatchIPv4Rules() throws {
        let peers = try AllowedPeers(parsing: "192.0.2.7")
        XCTAssertTrue(peers.allows(try peer("::ffff:192.0.2.7")))
        XCTAssertEqual(try peer("::ffff:192.0.2.7"), try peer("192.0.2.7"))
        XCTAssertEqual(try peer("::ffff:192.0.2.7").description, "192.0.2.7")
    }

    func testLoopbackDefault() throws {
        let peers = AllowedPeers.loopback
        for allowed in ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "::ffff:127.0.0.1"] {
            XCTAssertTrue(peers.allows(try peer(allowed)), allowed)
        }
        for refused in ["128.0.0.1", "126.255.255.255", "10.0.0.1", "::2", "::", "0.0.0.0", "2001:db8::1"] {
            XCTAssertFalse(peers.allows(try peer(refused)), refused)
        }
        XCTAssertEqual(peers.description, "127.0.0.0/8,::1")
    }

    func testPrefixZeroAllowsEveryPeerOfThatFamily() throws {
        let any4 = try AllowedPeers(parsing: "0.0.0.0/0")
        XCTAssertTrue(any4.allows(try peer("203.0.113.9")))
        XCTAssertFalse(any4.allows(try peer("2001:db8::1")))
        let any6 = try AllowedPeers(parsing: "::/0")
        XCTAssertTrue(any6.allows(try peer("2001:db8::1")))
        XCTAssertTrue(any6.allows(try peer("203.0.113.9")), "::/0 includes the IPv4-mapped range")
    }

    func testMalformedEntriesAreNamed() {
        for (text, entry) in [("", ""), ("localhost", "localhost"), ("1.2.3", "1.2.3"), ("256.1.1.1", "256.1.1.1"),
                              ("1.2.3.4/33", "1.2.3.4/33"), ("::1/129", "::1/129"), ("1.2.3.4/", "1.2.3.4/"),
                              ("1.2.3.4/-1", "1.2.3.4/-1"), ("1.2.3.4,", ""), ("1.2.3.4,,::1", ""), ("1.2.3.4 5.6.7.8", "1.2.3.4 5.6.7.8")] {
            XCTAssertThrowsError(try AllowedPeers(parsing: text), text) { error in
                XCTAssertEqual((error as? AllowedPeers.ParseError)?.entry, entry, text)
            }
        }
    }

    func testPeerAddressFromAcceptedSocketAddresses() throws {
        var v4 = sockaddr_in()
        v4.sin_family = sa_family_t(AF_INET)
        v4.sin_addr.s_addr = inet_addr("192.0.2.7")
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in withUnsafeBytes(of: v4) { raw.copyMemory(from: $0) } }
        XCTAssertEqual(PeerAddress(socketAddress: storage), try peer("192.0.2.7"))

        var v6 = sockaddr_in6()
        v6.sin6_family = sa_family_t(AF_INET6)
        XCTAssertEqual(inet_pton(AF_INET6, "2001:db8::5", &v6.sin6_addr), 1)
        storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in withUnsafeBytes(of: v6) { raw.copyMemory(from: $0) } }
        XCTAssertEqual(PeerAddress(socketAddress: storage)?.description, "2001:db8::5")

        storage = sockaddr_storage()
        storage.ss_family = sa_family_t(AF_UNIX)
        XCTAssertNil(PeerAddress(socketAddress: storage), "a Unix socket has no address to filter on")
    }
}
