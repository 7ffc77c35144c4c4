#include "COpenSSLShims.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

const uint64_t sg_SSL_OP_NO_COMPRESSION = SSL_OP_NO_COMPRESSION;
const uint64_t sg_SSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;
const uint64_t sg_SSL_OP_CIPHER_SERVER_PREFERENCE = SSL_OP_CIPHER_SERVER_PREFERENCE;
const uint64_t sg_SSL_OP_NO_TICKET = SSL_OP_NO_TICKET;

const int sg_GEN_EMAIL = GEN_EMAIL;
const int sg_GEN_DNS = GEN_DNS;
const int sg_GEN_URI = GEN_URI;
const int sg_GEN_IPADD = GEN_IPADD;

int sg_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

int sg_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}

int sg_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return (int)SSL_CTX_set1_groups_list(ctx, list);
}

long sg_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}

long sg_SSL_CTX_sess_set_cache_size(SSL_CTX *ctx, long size) {
    return SSL_CTX_sess_set_cache_size(ctx, size);
}

long sg_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}

int sg_SSL_CTX_add_extra_chain_cert(SSL_CTX *ctx, X509 *cert) {
    return (int)SSL_CTX_add_extra_chain_cert(ctx, cert);
}

static int sg_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl;
    (void)arg;
    static const unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, outlen, http11, sizeof(http11), in, inlen)
            == OPENSSL_NPN_NEGOTIATED) {
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

void sg_SSL_CTX_select_alpn_http11(SSL_CTX *ctx) {
    SSL_CTX_set_alpn_select_cb(ctx, sg_alpn_select, NULL);
}

int sg_verify_accept_any(int preverify_ok, X509_STORE_CTX *store) {
    (void)preverify_ok;
    (void)store;
    return 1;
}

void sg_BIO_set_mem_eof_return(BIO *bio, int value) {
    BIO_set_mem_eof_return(bio, value);
}

void sg_OPENSSL_free(void *pointer) {
    OPENSSL_free(pointer);
}

void *sg_x509_sans(X509 *cert) {
    return X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
}

int sg_sans_count(const void *sans) {
    return sans == NULL ? 0 : sk_GENERAL_NAME_num((const GENERAL_NAMES *)sans);
}

int sg_sans_get(const void *sans, int index, const unsigned char **data, int *length) {
    if (sans == NULL || index < 0 || index >= sk_GENERAL_NAME_num((const GENERAL_NAMES *)sans)) {
        return -1;
    }
    const GENERAL_NAME *name = sk_GENERAL_NAME_value((const GENERAL_NAMES *)sans, index);
    const ASN1_STRING *value = NULL;
    switch (name->type) {
    case GEN_EMAIL: value = name->d.rfc822Name; break;
    case GEN_DNS: value = name->d.dNSName; break;
    case GEN_URI: value = name->d.uniformResourceIdentifier; break;
    case GEN_IPADD: value = name->d.iPAddress; break;
    default: break;
    }
    if (value == NULL) {
        *data = NULL;
        *length = 0;
    } else {
        *data = ASN1_STRING_get0_data(value);
        *length = ASN1_STRING_length(value);
    }
    return name->type;
}

void sg_sans_free(void *sans) {
    if (sans != NULL) {
        GENERAL_NAMES_free((GENERAL_NAMES *)sans);
    }
}

STACK_OF(X509) *sg_pem_read_certificates(const char *pem, size_t length) {
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) {
        return NULL;
    }
    STACK_OF(X509) *stack = sk_X509_new_null();
    if (stack == NULL) {
        BIO_free(bio);
        return NULL;
    }
    X509 *cert;
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(stack, cert) == 0) {
            X509_free(cert);
            break;
        }
    }
    BIO_free(bio);
    /* PEM_read_bio_X509 ends with a "no start line" error at the end of input:
     * not a failure when at least one certificate was read. */
    if (sk_X509_num(stack) == 0) {
        sk_X509_free(stack);
        return NULL;
    }
    ERR_clear_error();
    return stack;
}

int sg_x509_stack_count(STACK_OF(X509) *stack) {
    return stack == NULL ? 0 : sk_X509_num(stack);
}

X509 *sg_x509_stack_get(STACK_OF(X509) *stack, int index) {
    return sk_X509_value(stack, index);
}

void sg_x509_stack_free(STACK_OF(X509) *stack) {
    sk_X509_pop_free(stack, X509_free);
}

static int sg_is_bcrypt_hash(const char *hash) {
    size_t length = strlen(hash);
    /* $2a$, $2b$, $2y$ (and $2x$ is refused): "$2b$10$" + 53 characters. */
    if (length != 60 || hash[0] != '$' || hash[1] != '2' || hash[3] != '$' || hash[6] != '$') {
        return 0;
    }
    return hash[2] == 'a' || hash[2] == 'b' || hash[2] == 'y';
}

int sg_bcrypt_verify(const char *password, const char *hash) {
    if (!sg_is_bcrypt_hash(hash)) {
        return -1;
    }
    struct crypt_data *data = calloc(1, sizeof(struct crypt_data));
    if (data == NULL) {
        return -1;
    }
    const char *computed = crypt_r(password, hash, data);
    int result;
    if (computed == NULL || computed[0] == '*' || strlen(computed) != strlen(hash)) {
        result = -1;
    } else {
        result = CRYPTO_memcmp(computed, hash, strlen(hash)) == 0 ? 1 : 0;
    }
    OPENSSL_cleanse(data, sizeof(struct crypt_data));
    free(data);
    return result;
}

int sg_bcrypt_hash(const char *password, int cost, char *out, size_t out_length) {
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn("$2y$", (unsigned long)cost, NULL, 0, setting, sizeof(setting)) == NULL) {
        return -1;
    }
    struct crypt_data *data = calloc(1, sizeof(struct crypt_data));
    if (data == NULL) {
        return -1;
    }
    const char *computed = crypt_r(password, setting, data);
    int result = -1;
    if (computed != NULL && computed[0] != '*' && strlen(computed) < out_length) {
        strcpy(out, computed);
        result = 0;
    }
    OPENSSL_cleanse(data, sizeof(struct crypt_data));
    free(data);
    return result;
}

/* --- hashes for the filter ------------------------------------------------ */

int sg_md5(const void *data, size_t length, unsigned char *out) {
    unsigned int written = 0;
    return EVP_Digest(data, length, out, &written, EVP_md5(), NULL) == 1 && written == 16;
}
