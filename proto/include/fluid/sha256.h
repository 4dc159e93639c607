/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 through libcrypto (SHA-NI where the CPU has it), and hex helpers. */
#ifndef FLUID_SHA256_H
#define FLUID_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "fluid/rc.h"

struct fc_sha256 {
    void *ctx; /* EVP_MD_CTX */
};

fc_rc fc_sha256_init(struct fc_sha256 *h);
void fc_sha256_update(struct fc_sha256 *h, const void *buf, size_t len);
/* Hashes len zero bytes without needing a buffer of that size. */
void fc_sha256_update_zeros(struct fc_sha256 *h, uint64_t len);
void fc_sha256_final(struct fc_sha256 *h, uint8_t out[32]);
void fc_sha256_free(struct fc_sha256 *h); /* safe on a zeroed or freed struct */

/* out must hold 2*len+1 chars. */
void fc_hex(const uint8_t *buf, size_t len, char *out);
/* Parses exactly 2*len hex digits; returns false on anything else. */
int fc_unhex(const char *hex, uint8_t *out, size_t len);

#endif
