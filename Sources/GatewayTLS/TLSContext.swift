internal import COpenSSL
internal import COpenSSLShims

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An OpenSSL server context built whole from a `TLSConfiguration`. It never changes
/// after `init`: a reload builds a new one and swaps it in, and connections that are
/// already open keep the context they started with.
package final class TLSContext: @unchecked Sendable {
    // @unchecked: `SSL_CTX` is only read after init (OpenSSL makes `SSL_new` and the
    // session cache thread-safe), and `sanPolicy` is immutable.

    let context: OpaquePointer
    package let configuration: TLSConfiguration
    /// The server certificate's notAfter, in seconds since 1970.
    package let certificateNotAfter: Int64
    /// The earliest notAfter among the client CA certificates, if any.
    package let clientCANotAfter: Int64?
    private let sanPolicy: AllowedSANPolicy

    /// Builds and checks a context; throws `TLSError` naming what is wrong.
    /// - Parameter preloaded: the text of files the caller has read already, by path,
    ///   so that a configuration load reads each file once.
    package init(configuration: TLSConfiguration, preloaded: [String: String] = [:]) throws(TLSError) {
        guard configuration.minimumVersion <= configuration.maximumVersion else {
            throw TLSError(.invalidConfiguration, "min_version is greater than max_version")
        }
        let restrictsSANs = !configuration.clientAllowedSANs.isEmpty || !configuration.clientAllowedSANPatterns.isEmpty
        if restrictsSANs && !configuration.clientAuth.verifiesCertificate {
            throw TLSError(
                .invalidConfiguration,
                "client_allowed_sans needs a client_auth_type that verifies certificates")
        }
        if configuration.clientCA == nil && configuration.clientAuth.verifiesCertificate {
            throw TLSError(.invalidConfiguration, "client_auth_type \(configuration.clientAuth.rawValue) needs a client CA")
        }

        OpenSSLErrorQueue.clear()
        guard let method = TLS_server_method(), let context = SSL_CTX_new(method) else {
            throw TLSError.drainingQueue(.allocationFailed, "SSL_CTX_new failed")
        }
        self.context = context
        self.configuration = configuration
        self.sanPolicy = AllowedSANPolicy(allowed: configuration.clientAllowedSANs,
                                          patterns: configuration.clientAllowedSANPatterns)
        do {
            try Self.applyProtocolSettings(configuration, to: context)
            self.certificateNotAfter = try Self.loadServerCredentials(configuration, into: context, preloaded: preloaded)
            self.clientCANotAfter = try Self.loadClientVerification(configuration, into: context, preloaded: preloaded)
        } catch {
            SSL_CTX_free(context)
            throw error
        }
        if restrictsSANs {
            SSL_CTX_set_ex_data(context, TLSContext.sanPolicyIndex, Unmanaged.passUnretained(sanPolicy).toOpaque())
        }
    }

    deinit {
        SSL_CTX_free(context)
    }

    // MARK: - Building

    private static func applyProtocolSettings(_ configuration: TLSConfiguration, to context: OpaquePointer) throws(TLSError) {
        guard sg_SSL_CTX_set_min_proto_version(context, Int32(configuration.minimumVersion.rawValue)) == 1,
            sg_SSL_CTX_set_max_proto_version(context, Int32(configuration.maximumVersion.rawValue)) == 1
        else {
            throw TLSError.drainingQueue(.invalidConfiguration, "cannot set the protocol versions")
        }
        var options = sg_SSL_OP_NO_COMPRESSION | sg_SSL_OP_NO_RENEGOTIATION | sg_SSL_OP_NO_TICKET
        if configuration.preferServerCipherSuites {
            options |= sg_SSL_OP_CIPHER_SERVER_PREFERENCE
        }
        SSL_CTX_set_options(context, options)

        if configuration.minimumVersion <= .tls12 {
            guard !configuration.cipherSuites.isEmpty,
                SSL_CTX_set_cipher_list(context, configuration.cipherSuites.joined(separator: ":")) == 1
            else {
                throw TLSError.drainingQueue(.invalidConfiguration, "no usable TLS 1.2 cipher suite in \(configuration.cipherSuites)")
            }
        }
        guard !configuration.groups.isEmpty,
            sg_SSL_CTX_set1_groups_list(context, configuration.groups.joined(separator: ":")) == 1
        else {
            throw TLSError.drainingQueue(.invalidConfiguration, "unsupported curve in \(configuration.groups)")
        }
        sg_SSL_CTX_select_alpn_http11(context)

        // Resumption: a session-id context is what keeps a resumed session from
        // skipping client-certificate verification set on another context.
        let sessionContext = Array("scrapeguard".utf8)
        _ = SSL_CTX_set_session_id_context(context, sessionContext, UInt32(sessionContext.count))
        _ = sg_SSL_CTX_set_session_cache_mode(context, Int(SSL_SESS_CACHE_SERVER))
        // Stateful tickets (SSL_OP_NO_TICKET above: the ticket names a session in this
        // cache) and one of them, not OpenSSL's two stateless ones: each stateless
        // ticket costs every full handshake an encode and a decode of the session,
        // client certificate included, and a scraper resumes at most one connection
        // at a time. A session holds the client's certificate (about 10 KB): 256 of
        // them bound the cache to a few MB. Prometheus itself does not resume.
        _ = sg_SSL_CTX_sess_set_cache_size(context, 256)
        _ = SSL_CTX_set_num_tickets(context, 1)
    }

    /// Loads the certificate chain and key; returns the leaf's notAfter.
    private static func loadServerCredentials(_ configuration: TLSConfiguration, into context: OpaquePointer,
                                              preloaded: [String: String]) throws(TLSError) -> Int64 {
        let chainPEM = try read(configuration.certificateChain, what: "certificate", credential: .certificate,
                                preloaded: preloaded)
        guard let chain = chainPEM.withCString({ sg_pem_read_certificates($0, strlen($0)) }) else {
            throw TLSError.drainingQueue(.invalidCredentials, "invalid certificate: \(describe(configuration.certificateChain, "certificate")) contains no certificate OpenSSL can read", credential: .certificate)
        }
        defer { sg_x509_stack_free(chain) }
        let leaf = sg_x509_stack_get(chain, 0)!
        OpenSSLErrorQueue.clear()
        guard SSL_CTX_use_certificate(context, leaf) == 1 else {
            throw TLSError.drainingQueue(.invalidCredentials, "invalid certificate: \(describe(configuration.certificateChain, "certificate")) cannot be used", credential: .certificate)
        }
        for index in 1..<max(1, sg_x509_stack_count(chain)) {
            let intermediate = sg_x509_stack_get(chain, index)!
            X509_up_ref(intermediate)
            guard sg_SSL_CTX_add_extra_chain_cert(context, intermediate) == 1 else {
                X509_free(intermediate)
                throw TLSError.drainingQueue(.invalidCredentials, "invalid certificate: cannot add intermediate certificate \(index)", credential: .certificate)
            }
        }

        let keyPEM = try read(configuration.privateKey, what: "key", credential: .privateKey, preloaded: preloaded)
        let key: OpaquePointer? = keyPEM.withCString { pointer in
            guard let bio = BIO_new_mem_buf(pointer, Int32(strlen(pointer))) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key else {
            throw TLSError.drainingQueue(.invalidCredentials, "invalid key: \(describe(configuration.privateKey, "key")) contains no private key OpenSSL can read", credential: .privateKey)
        }
        defer { EVP_PKEY_free(key) }
        OpenSSLErrorQueue.clear()
        guard SSL_CTX_use_PrivateKey(context, key) == 1, SSL_CTX_check_private_key(context) == 1 else {
            throw TLSError.drainingQueue(.invalidCredentials, "the private key does not match the certificate", credential: .privateKey)
        }
        return notAfter(of: leaf)
    }

    /// Sets how client certificates are asked for and checked; returns the CA's
    /// earliest notAfter.
    private static func loadClientVerification(_ configuration: TLSConfiguration, into context: OpaquePointer,
                                               preloaded: [String: String]) throws(TLSError) -> Int64? {
        var earliestNotAfter: Int64?
        if let source = configuration.clientCA {
            let pem = try read(source, what: "client CA", credential: .clientCA, preloaded: preloaded)
            guard let cas = pem.withCString({ sg_pem_read_certificates($0, strlen($0)) }) else {
                throw TLSError.drainingQueue(.invalidCredentials, "\(describe(source, "client CA")) contains no certificate", credential: .clientCA)
            }
            defer { sg_x509_stack_free(cas) }
            let store = SSL_CTX_get_cert_store(context)
            for index in 0..<sg_x509_stack_count(cas) {
                let ca = sg_x509_stack_get(cas, index)!
                OpenSSLErrorQueue.clear()
                guard X509_STORE_add_cert(store, ca) == 1, SSL_CTX_add_client_CA(context, ca) == 1 else {
                    throw TLSError.drainingQueue(.invalidCredentials, "cannot use client CA certificate \(index)", credential: .clientCA)
                }
                let expiry = notAfter(of: ca)
                earliestNotAfter = min(earliestNotAfter ?? expiry, expiry)
            }
        }

        let mode: Int32
        switch configuration.clientAuth {
        case .noClientCert:
            mode = SSL_VERIFY_NONE
        case .requestClientCert, .verifyClientCertIfGiven:
            mode = SSL_VERIFY_PEER
        case .requireAnyClientCert, .requireAndVerifyClientCert:
            mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
        }
        if configuration.clientAuth.verifiesCertificate {
            let restrictsSANs = !configuration.clientAllowedSANs.isEmpty || !configuration.clientAllowedSANPatterns.isEmpty
            SSL_CTX_set_verify(context, mode, restrictsSANs ? verifyAllowedSAN : nil)
            SSL_CTX_set_verify_depth(context, 8)
        } else if mode == SSL_VERIFY_NONE {
            SSL_CTX_set_verify(context, mode, nil)
        } else {
            SSL_CTX_set_verify(context, mode, sg_verify_accept_any)
        }
        return earliestNotAfter
    }

    private static func read(_ source: PEMSource, what: String, credential: TLSError.Credential,
                             preloaded: [String: String]) throws(TLSError) -> String {
        switch source {
        case .inline(let pem):
            return pem
        case .file(let path):
            if let text = preloaded[path] { return text }
            do {
                return try FileReading.readText(path)
            } catch {
                throw TLSError(.invalidCredentials, "cannot read \(what) file \(path): \(error.reason)", credential: credential)
            }
        }
    }

    private static func describe(_ source: PEMSource, _ what: String) -> String {
        switch source {
        case .inline: return "inline \(what)"
        case .file(let path): return "\(what) file \(path)"
        }
    }

    private static func notAfter(of certificate: OpaquePointer) -> Int64 {
        guard let time = X509_get0_notAfter(certificate) else { return 0 }
        var broken = tm()
        guard ASN1_TIME_to_tm(time, &broken) == 1 else { return 0 }
        return Int64(timegm(&broken))
    }

    // MARK: - client_allowed_sans

    /// The ex-data slot of an `SSL_CTX` that points at its `AllowedSANPolicy`.
    static let sanPolicyIndex: Int32 = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, nil, nil, nil, nil)

    /// The ex-data slot of an `SSL`, set (to any non-null pointer) when the verify
    /// callback refused the client certificate's SANs: the verify result alone
    /// (`X509_V_ERR_CERT_REJECTED`) does not say it was the SANs. `TLSConnection`
    /// reads it when a handshake fails.
    static let sanRefusedIndex: Int32 = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, nil, nil, nil, nil)
}

/// The allowed SANs, reachable from OpenSSL's verify callback through ex-data.
final class AllowedSANPolicy: Sendable {
    let allowed: [String]
    let patterns: [SANPattern]

    init(allowed: [String], patterns: [SANPattern]) {
        self.allowed = allowed
        self.patterns = patterns
    }

    func allows(_ peer: PeerIdentity) -> Bool {
        peer.hasAnySAN(in: allowed) || patterns.contains { $0.matches(peer) }
    }
}

/// Verify callback used when `client_allowed_sans` is set: after the chain verified,
/// the leaf (depth 0) must carry an allowed SAN, else the handshake fails with
/// `X509_V_ERR_CERT_REJECTED`, which OpenSSL sends as a `bad_certificate` alert: what
/// Go's exporter-toolkit sends, so Prometheus reports the same error for both.
private func verifyAllowedSAN(_ preverifyOK: Int32, _ store: OpaquePointer?) -> Int32 {
    guard preverifyOK == 1, let store else { return preverifyOK }
    guard X509_STORE_CTX_get_error_depth(store) == 0 else { return 1 }
    guard let sslPointer = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()),
        let context = SSL_get_SSL_CTX(OpaquePointer(sslPointer)),
        let policyPointer = SSL_CTX_get_ex_data(context, TLSContext.sanPolicyIndex),
        let leaf = X509_STORE_CTX_get_current_cert(store)
    else {
        X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION)
        return 0
    }
    let policy = Unmanaged<AllowedSANPolicy>.fromOpaque(policyPointer).takeUnretainedValue()
    if policy.allows(PeerIdentity(certificate: leaf)) {
        return 1
    }
    _ = SSL_set_ex_data(OpaquePointer(sslPointer), TLSContext.sanRefusedIndex, UnsafeMutableRawPointer(bitPattern: 1))
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED)
    return 0
}
