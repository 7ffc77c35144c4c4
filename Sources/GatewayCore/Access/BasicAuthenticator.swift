import GatewayTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

// Base64 only; FoundationEssentials (no ICU) is in the process for swift-argument-parser
// and swift-metrics anyway.
#if canImport(FoundationEssentials)
import struct FoundationEssentials.Data
#else
import struct Foundation.Data
#endif

/// HTTP basic auth against bcrypt hashes, made cheap for a scraper that sends the
/// same credentials every 15 seconds:
/// - each verdict is cached under a digest of (user, hash, password), so a changed
///   hash or password never hits a stale entry, and no password is kept in memory;
/// - bcrypt runs on a small thread pool, never on an event loop, and at most
///   `maximumPendingChecks` wait for it: past that the request is refused at once;
/// - an unknown user is checked against a fake hash of the same cost, so timing
///   does not tell which users exist.
package final class BasicAuthenticator: Sendable {
    package enum Outcome: Sendable, Equatable {
        case allowed(user: String)
        case missingCredentials
        case malformedCredentials
        case unknownUser
        case wrongPassword
        /// Too many bcrypt checks are already waiting.
        case overloaded

        /// The `reason` label of the auth-failure counter.
        package var failureReason: String? {
            switch self {
            case .allowed: return nil
            case .missingCredentials: return "missing_credentials"
            case .malformedCredentials: return "malformed_credentials"
            case .unknownUser: return "unknown_user"
            case .wrongPassword: return "wrong_password"
            case .overloaded: return "overloaded"
            }
        }
    }

    private struct State {
        var cache: [CacheKey: Bool] = [:]
        var pendingChecks = 0
        var bcryptComputations = 0
    }

    private struct CacheKey: Hashable {
        var high: UInt64, midHigh: UInt64, midLow: UInt64, low: UInt64
    }

    private let users: [String: String]
    private let fakeHash: String
    private let pool: NIOThreadPool
    private let state = NIOLockedValueBox(State())
    private let cacheCapacity: Int
    private let maximumPendingChecks: Int

    package var isEnabled: Bool { !users.isEmpty }

    /// How many bcrypt computations ran: a cached verdict does not add to it.
    package var bcryptComputations: Int { state.withLockedValue { $0.bcryptComputations } }

    package init(users: [String: String], pool: NIOThreadPool, cacheCapacity: Int = 1024, maximumPendingChecks: Int = 64) {
        self.users = users
        self.pool = pool
        self.cacheCapacity = cacheCapacity
        self.maximumPendingChecks = maximumPendingChecks
        // Of the users' highest cost, so that an unknown user costs what a known one
        // does; made without a bcrypt, so start-up and reloads do not wait for one.
        self.fakeHash = BcryptHash.decoy(cost: users.values.compactMap(BcryptHash.cost(of:)).max() ?? 10)
    }

    /// Checks an `Authorization` header value. Completes on `eventLoop`.
    package func authenticate(authorization: String?, on eventLoop: EventLoop) -> EventLoopFuture<Outcome> {
        guard let authorization else {
            return eventLoop.makeSucceededFuture(.missingCredentials)
        }
        guard let (user, password) = Self.parseBasic(authorization) else {
            return eventLoop.makeSucceededFuture(.malformedCredentials)
        }
        let knownHash = users[user]
        let hash = knownHash ?? fakeHash
        let key = Self.cacheKey(user: user, hash: hash, password: password)
        let cached: Bool? = state.withLockedValue { $0.cache[key] }
        if let cached {
            return eventLoop.makeSucceededFuture(Self.outcome(user: user, known: knownHash != nil, matched: cached))
        }
        let admitted = state.withLockedValue { state -> Bool in
            guard state.pendingChecks < maximumPendingChecks else { return false }
            state.pendingChecks += 1
            return true
        }
        guard admitted else {
            return eventLoop.makeSucceededFuture(.overloaded)
        }
        let known = knownHash != nil
        return pool.runIfActive(eventLoop: eventLoop) { [state, cacheCapacity] in
            let matched = BcryptHash.verify(password: password, hash: hash) == .match
            state.withLockedValue { state in
                state.pendingChecks -= 1
                state.bcryptComputations += 1
                if state.cache.count >= cacheCapacity, let victim = state.cache.keys.first {
                    state.cache.removeValue(forKey: victim)
                }
                state.cache[key] = matched
            }
            return Self.outcome(user: user, known: known, matched: matched)
        }
    }

    private static func outcome(user: String, known: Bool, matched: Bool) -> Outcome {
        guard known else { return .unknownUser }
        return matched ? .allowed(user: user) : .wrongPassword
    }

    /// `Basic base64(user:password)`; the scheme is case-insensitive.
    static func parseBasic(_ header: String) -> (String, String)? {
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic",
            let data = Data(base64Encoded: parts[1].trimmingSpaces),
            let decoded = String(validating: data, as: UTF8.self),
            let colon = decoded.firstIndex(of: ":")
        else { return nil }
        return (String(decoded[..<colon]), String(decoded[decoded.index(after: colon)...]))
    }

    /// SHA-256 over length-prefixed user, hash and password: no two different
    /// triples share a key, and the password itself is not stored.
    private static func cacheKey(user: String, hash: String, password: String) -> CacheKey {
        var input: [UInt8] = []
        for part in [user, hash, password] {
            let bytes = Array(part.utf8)
            var length = UInt32(bytes.count).bigEndian
            withUnsafeBytes(of: &length) { input.append(contentsOf: $0) }
            input.append(contentsOf: bytes)
        }
        let digest = Digest.sha256(input)
        func word(_ offset: Int) -> UInt64 {
            digest[offset..<offset + 8].reduce(0) { ($0 << 8) | UInt64($1) }
        }
        return CacheKey(high: word(0), midHigh: word(8), midLow: word(16), low: word(24))
    }
}
