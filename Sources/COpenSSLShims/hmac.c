/* HMAC-SHA256 for pseudonyms, on OpenSSL's SHA-256 with the key's two pad blocks
 * hashed once.
 *
 * Why not EVP_MAC: a pseudonym is a short value, and OpenSSL 3.0's HMAC restarts each
 * one by duplicating its keyed digest context (`EVP_MD_CTX_copy_ex`: a free and a
 * malloc of the provider's context, twice) and cleanses it after: 157 ns a value here,
 * where the same hash from saved states is 91 ns (2026-11-30, a 22-byte value) and the
 * first scrape under a PII policy takes two a series. HMAC(K, m) is
 * H((K' ^ opad) || H((K' ^ ipad) || m)) (RFC 2104; K' is K, or SHA-256(K) when longer
 * than the 64-byte block, zero-padded), so both pad blocks are hashed once, at keying,
 * and each value starts from a copy of those states: a struct copy, no allocation.
 *
 * SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, which has no
 * way to copy a digest state without allocating; they are the same assembly (SHA-NI
 * where the CPU has it). The RFC 4231 vectors and a comparison with OpenSSL's own
 * `HMAC()` on generated keys and values (PseudonymizerTests) hold this to EVP's result.
 *
 * The low-level calls do not go through OpenSSL's providers: under a FIPS-only
 * configuration the pseudonyms are not made inside the validated module. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "COpenSSLShims.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

struct sg_hmac {
    SHA256_CTX inner; /* after the block K' ^ ipad */
    SHA256_CTX outer; /* after the block K' ^ opad */
};

sg_hmac *sg_hmac_sha256_new(const unsigned char *key, size_t key_length) {
    if (key == NULL || key_length == 0) {
        return NULL;
    }
    unsigned char block[SHA256_CBLOCK];
    memset(block, 0, sizeof(block));
    if (key_length > SHA256_CBLOCK) {
        if (SHA256(key, key_length, block) == NULL) {
            return NULL;
        }
    } else {
        memcpy(block, key, key_length);
    }
    sg_hmac *hmac = malloc(sizeof(sg_hmac));
    if (hmac == NULL) {
        OPENSSL_cleanse(block, sizeof(block));
        return NULL;
    }
    unsigned char pad[SHA256_CBLOCK];
    int ok = 1;
    for (size_t index = 0; index < SHA256_CBLOCK; index++) {
        pad[index] = block[index] ^ 0x36;
    }
    ok &= SHA256_Init(&hmac->inner) == 1 && SHA256_Update(&hmac->inner, pad, sizeof(pad)) == 1;
    for (size_t index = 0; index < SHA256_CBLOCK; index++) {
        pad[index] = block[index] ^ 0x5c;
    }
    ok &= SHA256_Init(&hmac->outer) == 1 && SHA256_Update(&hmac->outer, pad, sizeof(pad)) == 1;
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(pad, sizeof(pad));
    if (!ok) {
        sg_hmac_free(hmac);
        return NULL;
    }
    return hmac;
}

int sg_hmac_compute(const sg_hmac *hmac, const void *data, size_t length, unsigned char *out) {
    /* Left on the stack, a finished copy holds no key: SHA256_Final leaves it the
     * digest (the inner one goes into the outer hash, the outer one is the output). */
    unsigned char inner_digest[SHA256_DIGEST_LENGTH];
    SHA256_CTX context = hmac->inner;
    if (SHA256_Update(&context, data, length) != 1 || SHA256_Final(inner_digest, &context) != 1) {
        return 0;
    }
    context = hmac->outer;
    return SHA256_Update(&context, inner_digest, sizeof(inner_digest)) == 1 && SHA256_Final(out, &context) == 1;
}

void sg_hmac_free(sg_hmac *hmac) {
    if (hmac != NULL) {
        OPENSSL_cleanse(hmac, sizeof(sg_hmac));
        free(hmac);
    }
}

int sg_hmac_sha256_reference(const unsigned char *key, size_t key_length, const void *data, size_t length,
                             unsigned char *out) {
    unsigned int written = 0;
    return HMAC(EVP_sha256(), key, (int)key_length, data, length, out, &written) != NULL && written == 32;
}
