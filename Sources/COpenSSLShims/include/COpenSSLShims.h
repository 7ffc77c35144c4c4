#ifndef SCRAPEGUARD_COPENSSL_SHIMS_H
#define SCRAPEGUARD_COPENSSL_SHIMS_H

/*
 * Functions for the parts of OpenSSL 3 that are macros (Swift cannot import
 * them), a few fixed callbacks, bcrypt through libcrypt, and the pseudonyms'
 * HMAC-SHA256 from saved states (hmac.c). Every name has the `sg_` prefix.
 */

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

/* SSL_OP_* constants are uint64_t casts in the headers. */
extern const uint64_t sg_SSL_OP_NO_COMPRESSION;
extern const uint64_t sg_SSL_OP_NO_RENEGOTIATION;
extern const uint64_t sg_SSL_OP_CIPHER_SERVER_PREFERENCE;
extern const uint64_t sg_SSL_OP_NO_TICKET;

int sg_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
int sg_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version);
int sg_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list);
long sg_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode);
long sg_SSL_CTX_sess_set_cache_size(SSL_CTX *ctx, long size);
long sg_SSL_CTX_set_mode(SSL_CTX *ctx, long mode);
int sg_SSL_CTX_add_extra_chain_cert(SSL_CTX *ctx, X509 *cert);

/* Selects "http/1.1" when the client offers it; otherwise no ALPN. */
void sg_SSL_CTX_select_alpn_http11(SSL_CTX *ctx);

/* A verify callback that accepts any presented certificate (RequestClientCert,
 * RequireAnyClientCert: the certificate is asked for, not checked). */
int sg_verify_accept_any(int preverify_ok, X509_STORE_CTX *store);

void sg_BIO_set_mem_eof_return(BIO *bio, int value);

void sg_OPENSSL_free(void *pointer);

/* Subject alternative names of a certificate. `sg_x509_sans` returns an opaque
 * list (NULL when the certificate has none); free it with `sg_sans_free`. */
void *sg_x509_sans(X509 *cert);
int sg_sans_count(const void *sans);
/* The type (GEN_DNS, GEN_EMAIL, GEN_URI, GEN_IPADD, ...) of SAN `index`, and its
 * raw bytes; -1 for an index out of range. */
int sg_sans_get(const void *sans, int index, const unsigned char **data, int *length);
void sg_sans_free(void *sans);

extern const int sg_GEN_EMAIL;
extern const int sg_GEN_DNS;
extern const int sg_GEN_URI;
extern const int sg_GEN_IPADD;

/* Reads all PEM certificates in `pem` into a stack; NULL if none or on error. */
STACK_OF(X509) *sg_pem_read_certificates(const char *pem, size_t length);
int sg_x509_stack_count(STACK_OF(X509) *stack);
X509 *sg_x509_stack_get(STACK_OF(X509) *stack, int index);
void sg_x509_stack_free(STACK_OF(X509) *stack);

/* bcrypt through libcrypt's crypt_r. Returns 1 when `password` matches `hash`,
 * 0 when it does not, -1 when `hash` is not a usable bcrypt hash. The comparison
 * of the computed and the stored hash is constant-time. */
int sg_bcrypt_verify(const char *password, const char *hash);

/* Writes a new bcrypt ($2y$) hash of `password` with `cost` into `out`.
 * Returns 0 on success, -1 on error. */
int sg_bcrypt_hash(const char *password, int cost, char *out, size_t out_length);

/* Hashes for the filter (MetricsFilter calls OpenSSL only through these). */

/* MD5 of `data` into `out` (16 bytes), for Prometheus's hashmod. 1 on success. */
int sg_md5(const void *data, size_t length, unsigned char *out);

/* A keyed HMAC-SHA256 (hmac.c): made once per key; a value is hashed from copies of
 * the key's saved states, allocating nothing and changing nothing (threads may share it). */
typedef struct sg_hmac sg_hmac;
/* NULL when the key is empty or OpenSSL failed. */
sg_hmac *sg_hmac_sha256_new(const unsigned char *key, size_t key_length);
/* HMAC of `data` into `out` (32 bytes). 1 on success. */
int sg_hmac_compute(const sg_hmac *hmac, const void *data, size_t length, unsigned char *out);
void sg_hmac_free(sg_hmac *hmac);
/* OpenSSL's own one-shot HMAC-SHA256 (`HMAC()`), which the tests hold sg_hmac to. */
int sg_hmac_sha256_reference(const unsigned char *key, size_t key_length, const void *data, size_t length,
                             unsigned char *out);

#endif
