/* SPDX-License-Identifier: Apache-2.0 */
/* AES-CTR for libssh2 with the keystream made in bulk.
 *
 * libssh2 1.10 (Debian 12) encrypts and decrypts a packet one 16-byte cipher block per
 * EVP_Cipher() call. OpenSSL then runs AES on one block at a time, which cannot use the
 * pipelined AES-NI path: on a dense volume copy this cost a third of the sender's CPU
 * (docs/ssh.md, "Cipher facts"; docs/volume.md, "Where the limits are"). CTR's keystream does not depend on the data, so this
 * small OpenSSL provider ("fluidctr") makes it ahead, 8 KiB at a time with the default
 * provider's AES-CTR, and each call only XORs. The bytes on the wire are the same: it is
 * AES-CTR with the same key and counter, only computed in larger pieces.
 *
 * fc_ssh_bulk_ctr() loads it into the default library context and makes it the preferred
 * implementation of AES-128/192/256-CTR ("?provider=fluidctr"), so the implicit fetch
 * behind libssh2's EVP_aes_128_ctr() picks it; every other algorithm still comes from the
 * default provider. Keys and keystream are wiped when a context is freed. */
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/error.h"
#include "fluid/ssh.h"

#define KS_LEN 8192 /* keystream made per refill: a multiple of 16, big enough for AES-NI */

static const unsigned char zeros[KS_LEN];
static _Atomic uint64_t bulk_bytes;

struct ctr_ctx {
    size_t keylen;          /* 16, 24 or 32: fixed by the algorithm */
    EVP_CIPHER_CTX *real;   /* the default provider's AES-CTR making the keystream */
    unsigned char key[32];
    unsigned char iv[16];
    bool keyed, ivset;
    unsigned char ks[KS_LEN];
    size_t pos, len;        /* ks[pos..len) is keystream not used yet */
};

/* The default provider's ciphers, fetched once (explicitly: not our own). */
static EVP_CIPHER *real_ctr[3];

static EVP_CIPHER *
real_for(size_t keylen)
{
    return real_ctr[keylen / 8 - 2];
}

static void *
ctx_new(size_t keylen)
{
    struct ctr_ctx *c = OPENSSL_zalloc(sizeof *c);
    if (!c)
        return NULL;
    c->keylen = keylen;
    if (!(c->real = EVP_CIPHER_CTX_new())) {
        OPENSSL_free(c);
        return NULL;
    }
    return c;
}

static void *new128(void *p) { (void)p; return ctx_new(16); }
static void *new192(void *p) { (void)p; return ctx_new(24); }
static void *new256(void *p) { (void)p; return ctx_new(32); }

static void
ctx_free(void *vc)
{
    struct ctr_ctx *c = vc;
    if (!c)
        return;
    EVP_CIPHER_CTX_free(c->real);
    OPENSSL_clear_free(c, sizeof *c);
}

static void *
ctx_dup(void *vc)
{
    struct ctr_ctx *c = vc, *d = OPENSSL_malloc(sizeof *d);
    if (!d)
        return NULL;
    memcpy(d, c, sizeof *d);
    if (!(d->real = EVP_CIPHER_CTX_new()) || !EVP_CIPHER_CTX_copy(d->real, c->real)) {
        EVP_CIPHER_CTX_free(d->real);
        OPENSSL_clear_free(d, sizeof *d);
        return NULL;
    }
    return d;
}

/* Both directions: CTR encryption and decryption are the same XOR. A NULL key or iv keeps
 * the one given before, as EVP_CipherInit_ex allows; with neither, the stream goes on
 * where it was (a new key or IV starts a new keystream). */
static int
ctx_init(void *vc, const unsigned char *key, size_t keylen, const unsigned char *iv,
         size_t ivlen, const OSSL_PARAM params[])
{
    struct ctr_ctx *c = vc;
    (void)params;
    if (!key && !iv)
        return 1;
    if (key) {
        if (keylen != c->keylen)
            return 0;
        memcpy(c->key, key, keylen);
        c->keyed = true;
    }
    if (iv) {
        if (ivlen != 16)
            return 0;
        memcpy(c->iv, iv, 16);
        c->ivset = true;
    }
    c->pos = c->len = 0;
    OPENSSL_cleanse(c->ks, sizeof c->ks);
    if (!c->keyed || !c->ivset)
        return 1;
    return EVP_EncryptInit_ex2(c->real, real_for(c->keylen), c->key, c->iv, NULL);
}

static int
refill(struct ctr_ctx *c)
{
    int n = 0;
    if (!EVP_EncryptUpdate(c->real, c->ks, &n, zeros, KS_LEN) || n != KS_LEN)
        return 0;
    c->pos = 0;
    c->len = KS_LEN;
    atomic_fetch_add_explicit(&bulk_bytes, KS_LEN, memory_order_relaxed);
    return 1;
}

static inline void
xor16(unsigned char *out, const unsigned char *in, const unsigned char *ks)
{
    uint64_t a, b, x, y;
    memcpy(&a, in, 8), memcpy(&b, in + 8, 8), memcpy(&x, ks, 8), memcpy(&y, ks + 8, 8);
    a ^= x, b ^= y;
    memcpy(out, &a, 8), memcpy(out + 8, &b, 8);
}

static __attribute__((noinline)) int
cipher_any(struct ctr_ctx *c, unsigned char *out, size_t *outl, size_t outsize,
           const unsigned char *in, size_t inl)
{
    if (!c->keyed || !c->ivset || outsize < inl)
        return 0;
    size_t done = 0;
    while (done < inl) {
        if (c->pos == c->len && !refill(c))
            return 0;
        size_t k = c->len - c->pos < inl - done ? c->len - c->pos : inl - done;
        const unsigned char *s = c->ks + c->pos;
        size_t i = 0;
        for (; i + 16 <= k; i += 16)
            xor16(out + done + i, in + done + i, s + i);
        for (; i < k; i++)
            out[done + i] = in[done + i] ^ s[i];
        c->pos += k;
        done += k;
    }
    *outl = inl;
    return 1;
}

/* libssh2 calls this once per 16-byte block: that case is kept to a few instructions. */
static int
ctx_cipher(void *vc, unsigned char *out, size_t *outl, size_t outsize, const unsigned char *in,
           size_t inl)
{
    struct ctr_ctx *c = vc;
    if (inl == 16 && c->len - c->pos >= 16 && outsize >= 16) { /* keyed, as len > 0 */
        xor16(out, in, c->ks + c->pos);
        c->pos += 16;
        *outl = 16;
        return 1;
    }
    return cipher_any(c, out, outl, outsize, in, inl);
}

static int
ctx_final(void *vc, unsigned char *out, size_t *outl, size_t outsize)
{
    (void)vc, (void)out, (void)outsize;
    *outl = 0;
    return 1;
}

static int
get_params(OSSL_PARAM params[], size_t keylen)
{
    OSSL_PARAM *p;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_MODE)) &&
        !OSSL_PARAM_set_uint(p, EVP_CIPH_CTR_MODE))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_KEYLEN)) &&
        !OSSL_PARAM_set_size_t(p, keylen))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_IVLEN)) &&
        !OSSL_PARAM_set_size_t(p, 16))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_BLOCK_SIZE)) &&
        !OSSL_PARAM_set_size_t(p, 1))
        return 0;
    static const char *const zero_flags[] = {
        OSSL_CIPHER_PARAM_AEAD, OSSL_CIPHER_PARAM_CUSTOM_IV, OSSL_CIPHER_PARAM_CTS,
        OSSL_CIPHER_PARAM_TLS1_MULTIBLOCK, OSSL_CIPHER_PARAM_HAS_RAND_KEY};
    for (size_t i = 0; i < sizeof zero_flags / sizeof *zero_flags; i++)
        if ((p = OSSL_PARAM_locate(params, zero_flags[i])) && !OSSL_PARAM_set_int(p, 0))
            return 0;
    return 1;
}

static int get128(OSSL_PARAM params[]) { return get_params(params, 16); }
static int get192(OSSL_PARAM params[]) { return get_params(params, 24); }
static int get256(OSSL_PARAM params[]) { return get_params(params, 32); }

static const OSSL_PARAM gettable[] = {
    OSSL_PARAM_uint(OSSL_CIPHER_PARAM_MODE, NULL),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_BLOCK_SIZE, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_AEAD, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_CUSTOM_IV, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_CTS, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_TLS1_MULTIBLOCK, NULL),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_HAS_RAND_KEY, NULL),
    OSSL_PARAM_END};

static const OSSL_PARAM *
gettable_params(void *provctx)
{
    (void)provctx;
    return gettable;
}

/* Per context: the lengths, and how far into the current keystream block we are ("num",
 * which OpenSSL's own CTR reports too). */
static int
get_ctx_params(void *vc, OSSL_PARAM params[])
{
    struct ctr_ctx *c = vc;
    OSSL_PARAM *p;
    if (!get_params(params, c->keylen)) /* the lengths, as for the algorithm */
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_NUM)) &&
        !OSSL_PARAM_set_uint(p, (unsigned)(c->pos % 16)))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_PADDING)) && !OSSL_PARAM_set_uint(p, 0))
        return 0;
    return 1;
}

static const OSSL_PARAM ctx_gettable[] = {
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, NULL),
    OSSL_PARAM_uint(OSSL_CIPHER_PARAM_NUM, NULL),
    OSSL_PARAM_uint(OSSL_CIPHER_PARAM_PADDING, NULL),
    OSSL_PARAM_END};

static const OSSL_PARAM *
gettable_ctx_params(void *vc, void *provctx)
{
    (void)vc, (void)provctx;
    return ctx_gettable;
}

/* Padding is meaningless for a stream mode and is accepted; a key length other than the
 * algorithm's is refused. Nothing else is settable. */
static int
set_ctx_params(void *vc, const OSSL_PARAM params[])
{
    struct ctr_ctx *c = vc;
    const OSSL_PARAM *p;
    size_t kl;
    if ((p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_KEYLEN)) &&
        (!OSSL_PARAM_get_size_t(p, &kl) || kl != c->keylen))
        return 0;
    return 1;
}

static const OSSL_PARAM ctx_settable[] = {
    OSSL_PARAM_uint(OSSL_CIPHER_PARAM_PADDING, NULL),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, NULL),
    OSSL_PARAM_END};

static const OSSL_PARAM *
settable_ctx_params(void *vc, void *provctx)
{
    (void)vc, (void)provctx;
    return ctx_settable;
}

#define CTR_DISPATCH(bits)                                                                   \
    static const OSSL_DISPATCH ctr##bits[] = {                                               \
        {OSSL_FUNC_CIPHER_NEWCTX, (void (*)(void))new##bits},                                \
        {OSSL_FUNC_CIPHER_FREECTX, (void (*)(void))ctx_free},                                \
        {OSSL_FUNC_CIPHER_DUPCTX, (void (*)(void))ctx_dup},                                  \
        {OSSL_FUNC_CIPHER_ENCRYPT_INIT, (void (*)(void))ctx_init},                           \
        {OSSL_FUNC_CIPHER_DECRYPT_INIT, (void (*)(void))ctx_init},                           \
        {OSSL_FUNC_CIPHER_UPDATE, (void (*)(void))ctx_cipher},                               \
        {OSSL_FUNC_CIPHER_FINAL, (void (*)(void))ctx_final},                                 \
        {OSSL_FUNC_CIPHER_CIPHER, (void (*)(void))ctx_cipher},                               \
        {OSSL_FUNC_CIPHER_GET_PARAMS, (void (*)(void))get##bits},                            \
        {OSSL_FUNC_CIPHER_GETTABLE_PARAMS, (void (*)(void))gettable_params},                 \
        {OSSL_FUNC_CIPHER_GET_CTX_PARAMS, (void (*)(void))get_ctx_params},                   \
        {OSSL_FUNC_CIPHER_GETTABLE_CTX_PARAMS, (void (*)(void))gettable_ctx_params},         \
        {OSSL_FUNC_CIPHER_SET_CTX_PARAMS, (void (*)(void))set_ctx_params},                   \
        {OSSL_FUNC_CIPHER_SETTABLE_CTX_PARAMS, (void (*)(void))settable_ctx_params},         \
        {0, NULL}}
CTR_DISPATCH(128);
CTR_DISPATCH(192);
CTR_DISPATCH(256);

static const OSSL_ALGORITHM ciphers[] = {
    {"AES-128-CTR", "provider=fluidctr", ctr128, NULL},
    {"AES-192-CTR", "provider=fluidctr", ctr192, NULL},
    {"AES-256-CTR", "provider=fluidctr", ctr256, NULL},
    {NULL, NULL, NULL, NULL}};

static const OSSL_ALGORITHM *
query(void *provctx, int op, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    return op == OSSL_OP_CIPHER ? ciphers : NULL;
}

static const OSSL_DISPATCH prov_fns[] = {
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))query}, {0, NULL}};

static int
prov_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
          void **provctx)
{
    (void)in;
    *out = prov_fns;
    *provctx = (void *)handle;
    return 1;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *install_error;
static OSSL_PROVIDER *prov_default, *prov_ours; /* held for the life of the process */

/* At exit, before OpenSSL's own cleanup (registered earlier, so run later): gives back
 * what install() took, which OpenSSL 3.0 would otherwise not free for a built-in provider. */
static void
uninstall(void)
{
    OSSL_PROVIDER_unload(prov_ours);
    OSSL_PROVIDER_unload(prov_default);
    for (int i = 0; i < 3; i++)
        EVP_CIPHER_free(real_ctr[i]);
}

static void
install(void)
{
    /* Loading a provider by hand stops OpenSSL from loading the default one by itself. */
    if (!(prov_default = OSSL_PROVIDER_load(NULL, "default"))) {
        install_error = "cannot load OpenSSL's default provider";
        return;
    }
    static const char *const names[] = {"AES-128-CTR", "AES-192-CTR", "AES-256-CTR"};
    for (int i = 0; i < 3; i++)
        if (!(real_ctr[i] = EVP_CIPHER_fetch(NULL, names[i], "provider=default"))) {
            install_error = "OpenSSL's default provider has no AES-CTR";
            return;
        }
    if (!OSSL_PROVIDER_add_builtin(NULL, "fluidctr", prov_init) ||
        !(prov_ours = OSSL_PROVIDER_load(NULL, "fluidctr"))) {
        install_error = "cannot load the fluidctr provider";
        return;
    }
    if (!EVP_set_default_properties(NULL, "?provider=fluidctr"))
        install_error = "cannot prefer the fluidctr provider";
    else
        atexit(uninstall);
}

fc_rc
fc_ssh_bulk_ctr(void)
{
    pthread_once(&once, install);
    return install_error ? FC_ERR(FC_E_INTERNAL, "ssh: bulk AES-CTR: %s", install_error) : FC_OK;
}

uint64_t
fc_ssh_bulk_ctr_bytes(void)
{
    return atomic_load_explicit(&bulk_bytes, memory_order_relaxed);
}
