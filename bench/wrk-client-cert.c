/*
 * LD_PRELOAD shim that gives wrk a TLS client certificate, which wrk itself cannot
 * present. bench/compare.sh builds it (gcc -shared -fPIC) and runs
 *
 *     WRK_CLIENT_CERT=client.crt WRK_CLIENT_KEY=client.key LD_PRELOAD=./wrk-client-cert.so wrk ...
 *
 * It wraps SSL_CTX_new: the real one (found with dlsym(RTLD_NEXT)) makes the
 * context, then the certificate chain and the key named by the environment are
 * loaded into it. This works because Debian's wrk links libssl.so.3 dynamically
 * and makes one client context with SSL_CTX_new before it connects anywhere.
 *
 * Any failure (a variable unset, a file unreadable, a key that does not match the
 * certificate) aborts the process with OpenSSL's reason: a benchmark that silently
 * ran without a client certificate would only measure handshake failures.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

typedef SSL_CTX *(*ssl_ctx_new_fn)(const SSL_METHOD *);

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "wrk-client-cert: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    ERR_print_errors_fp(stderr);
    abort();
}

static const char *required_env(const char *name)
{
    const char *value = getenv(name);
    if (value == NULL || *value == '\0') {
        die("environment variable not set", name);
    }
    return value;
}

SSL_CTX *SSL_CTX_new(const SSL_METHOD *method)
{
    static ssl_ctx_new_fn real_ssl_ctx_new;
    if (real_ssl_ctx_new == NULL) {
        real_ssl_ctx_new = (ssl_ctx_new_fn)dlsym(RTLD_NEXT, "SSL_CTX_new");
        if (real_ssl_ctx_new == NULL) {
            die("cannot find the real SSL_CTX_new", dlerror());
        }
    }
    SSL_CTX *context = real_ssl_ctx_new(method);
    if (context == NULL) {
        return NULL; /* the caller reports OpenSSL's own failure */
    }

    const char *certificate = required_env("WRK_CLIENT_CERT");
    const char *key = required_env("WRK_CLIENT_KEY");
    if (SSL_CTX_use_certificate_chain_file(context, certificate) != 1) {
        die("cannot load the client certificate chain", certificate);
    }
    if (SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) != 1) {
        die("cannot load the client key", key);
    }
    if (SSL_CTX_check_private_key(context) != 1) {
        die("the client key does not match the certificate", key);
    }
    if (getenv("WRK_CLIENT_CERT_VERBOSE") != NULL) {
        fprintf(stderr, "wrk-client-cert: loaded %s\n", certificate);
    }
    return context;
}
