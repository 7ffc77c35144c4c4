#ifndef SCRAPEGUARD_COPENSSL_SHIM_H
#define SCRAPEGUARD_COPENSSL_SHIM_H

#include <openssl/opensslv.h>
#if OPENSSL_VERSION_MAJOR < 3
#error "scrapeguard needs OpenSSL 3 (Debian: libssl-dev from bookworm or later)"
#endif

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#endif
