/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 over libcrypto's EVP interface. */
#include "fluid/sha256.h"

#include <openssl/evp.h>
#include <string.h>

#include "fluid/error.h"

fc_rc
fc_sha256_init(struct fc_sha256 *h)
{
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx)
        return FC_ERR(FC_E_NOMEM, "sha256: out of memory");
    if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(h->ctx);
        h->ctx = NULL;
        return FC_ERR(FC_E_INTERNAL, "sha256: EVP_DigestInit_ex failed");
    }
    return FC_OK;
}

void
fc_sha256_update(struct fc_sha256 *h, const void *buf, size_t len)
{
    if (len)
        EVP_DigestUpdate(h->ctx, buf, len);
}

void
fc_sha256_update_zeros(struct fc_sha256 *h, uint64_t len)
{
    static const uint8_t z[65536];
    while (len > 0) {
        size_t k = len < sizeof z ? (size_t)len : sizeof z;
        EVP_DigestUpdate(h->ctx, z, k);
        len -= k;
    }
}

void
fc_sha256_final(struct fc_sha256 *h, uint8_t out[32])
{
    unsigned int n = 32;
    EVP_DigestFinal_ex(h->ctx, out, &n);
}

void
fc_sha256_free(struct fc_sha256 *h)
{
    if (h && h->ctx) {
        EVP_MD_CTX_free(h->ctx);
        h->ctx = NULL;
    }
}

void
fc_hex(const uint8_t *buf, size_t len, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = d[buf[i] >> 4];
        out[2 * i + 1] = d[buf[i] & 15];
    }
    out[2 * len] = '\0';
}

static int
nib(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
fc_unhex(const char *hex, uint8_t *out, size_t len)
{
    if (!hex || strlen(hex) != 2 * len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        int a = nib(hex[2 * i]), b = nib(hex[2 * i + 1]);
        if (a < 0 || b < 0)
            return 0;
        out[i] = (uint8_t)(a << 4 | b);
    }
    return 1;
}
