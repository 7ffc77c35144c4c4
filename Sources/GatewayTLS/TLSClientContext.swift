internal import COpenSSL
internal import COpenSSLShims

/// An OpenSSL client context for the client end of a `TLSConnection`: what lets a test
/// hold the server to a real handshake in memory, as a scraper would make it. It
/// trusts one CA (the server's chain is verified), presents a certificate when given
/// one, and offers ALPN `http/1.1` as Prometheus does.
package final class TLSClientContext: @unchecked Sendable {
    // @unchecked: the `SSL_CTX` is only read after init.

    let context: OpaquePointer

    /// - Parameters:
    ///   - trustedCA: PEM of the CA the server's certificate must chain to.
    ///   - certificate: PEM of the client certificate and its key, or nil to present none.
    ///   - maximumVersion: the newest protocol version to offer.
    package init(trustedCA: String, certificate: (chain: String, key: String)? = nil,
                 maximumVersion: TLSProtocolVersion = .tls13) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard let method = TLS_client_method(), let context = SSL_CTX_new(method) else {
            throw TLSError.drainingQueue(.allocationFailed, "SSL_CTX_new failed")
        }
        self.context = context
        do {
            try Self.configure(context, trustedCA: trustedCA, certificate: certificate, maximumVersion: maximumVersion)
        } catch {
            SSL_CTX_free(context)
            throw error
        }
    }

    deinit {
        SSL_CTX_free(context)
    }

    private static func configure(_ context: OpaquePointer, trustedCA: String, certificate: (chain: String, key: String)?,
                                  maximumVersion: TLSProtocolVersion) throws(TLSError) {
        guard sg_SSL_CTX_set_max_proto_version(context, Int32(maximumVersion.rawValue)) == 1 else {
            throw TLSError.drainingQueue(.invalidConfiguration, "cannot set the maximum protocol version")
        }
        guard let cas = trustedCA.withCString({ sg_pem_read_certificates($0, trustedCA.utf8.count) }) else {
            throw TLSError(.invalidCredentials, "the trusted CA holds no certificate", credential: .clientCA)
        }
        defer { sg_x509_stack_free(cas) }
        let store = SSL_CTX_get_cert_store(context)
        for index in 0..<sg_x509_stack_count(cas) {
            guard X509_STORE_add_cert(store, sg_x509_stack_get(cas, index)) == 1 else {
                throw TLSError.drainingQueue(.invalidCredentials, "cannot trust CA certificate \(index)", credential: .clientCA)
            }
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        let alpn: [UInt8] = [8] + Array("http/1.1".utf8)
        _ = SSL_CTX_set_alpn_protos(context, alpn, UInt32(alpn.count))

        guard let certificate else { return }
        guard let chain = certificate.chain.withCString({ sg_pem_read_certificates($0, certificate.chain.utf8.count) }) else {
            throw TLSError(.invalidCredentials, "the client certificate holds no certificate", credential: .certificate)
        }
        defer { sg_x509_stack_free(chain) }
        let key: OpaquePointer? = certificate.key.withCString { pointer in
            guard let bio = BIO_new_mem_buf(pointer, Int32(certificate.key.utf8.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key else {
            throw TLSError.drainingQueue(.invalidCredentials, "the client key is not a private key", credential: .privateKey)
        }
        defer { EVP_PKEY_free(key) }
        OpenSSLErrorQueue.clear()
        guard SSL_CTX_use_certificate(context, sg_x509_stack_get(chain, 0)) == 1,
            SSL_CTX_use_PrivateKey(context, key) == 1, SSL_CTX_check_private_key(context) == 1
        else {
            throw TLSError.drainingQueue(.invalidCredentials, "the client key does not match its certificate",
                                         credential: .privateKey)
        }
    }
}
