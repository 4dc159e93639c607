// SPDX-License-Identifier: Apache-2.0
// fluid_ssh's bulk AES-CTR (proto/src/ssh/ctr.c): once installed, the implicit fetch behind
// EVP_aes_*_ctr() (what libssh2 uses) picks it, and its output is AES-CTR: the NIST
// SP 800-38A known answer, and the default provider's output for the same key and counter
// whatever the sizes of the calls (16-byte blocks as libssh2 makes them, odd pieces,
// pieces across a keystream refill), for encryption and decryption, after a new IV, after
// an init with neither key nor IV (the stream goes on), and from a copied context. A key of
// the wrong length is refused.
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <string.h>

#include "fluid/error.h"
#include "fluid/ssh.h"

#define LEN (100 * 1024 + 7)

static void
setup(void)
{
    cr_assert_eq(fc_ssh_bulk_ctr(), FC_OK, "%s", fc_error_msg());
}

TestSuite(ssh_ctr, .init = setup);

static const EVP_CIPHER *
legacy(int bits)
{
    return bits == 128 ? EVP_aes_128_ctr() : bits == 192 ? EVP_aes_192_ctr() : EVP_aes_256_ctr();
}

static const char *
prov_name(const EVP_CIPHER_CTX *c)
{
    return OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(EVP_CIPHER_CTX_get0_cipher(c)));
}

/* The default provider's AES-CTR over all of in, in one call. */
static void
reference(int bits, const unsigned char *key, const unsigned char *iv, const unsigned char *in,
          unsigned char *out, size_t len)
{
    char name[32];
    snprintf(name, sizeof name, "AES-%d-CTR", bits);
    EVP_CIPHER *ref = EVP_CIPHER_fetch(NULL, name, "provider=default");
    cr_assert_not_null(ref);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    cr_assert(EVP_EncryptInit_ex2(c, ref, key, iv, NULL));
    int n = 0;
    cr_assert(EVP_EncryptUpdate(c, out, &n, in, (int)len));
    cr_assert_eq((size_t)n, len);
    EVP_CIPHER_CTX_free(c);
    EVP_CIPHER_free(ref);
}

/* Runs c over in with EVP_Cipher (as libssh2 does) in pieces: 16 bytes, then sizes from
 * the list (odd ones, one bigger than a keystream refill), repeated. */
static void
in_pieces(EVP_CIPHER_CTX *c, const unsigned char *in, unsigned char *out, size_t len)
{
    static const size_t sizes[] = {16, 16, 16, 1, 15, 33, 16, 9000, 16, 4096, 3, 20000, 16};
    size_t off = 0;
    for (size_t i = 0; off < len; i++) {
        size_t n = sizes[i % (sizeof sizes / sizeof *sizes)];
        if (n > len - off)
            n = len - off;
        cr_assert_eq(EVP_Cipher(c, out + off, in + off, (unsigned)n), (int)n);
        off += n;
    }
}

Test(ssh_ctr, nist_known_answer)
{
    /* SP 800-38A F.5.1, CTR-AES128.Encrypt, first two blocks */
    static const unsigned char key[16] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                                          0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c};
    unsigned char iv[16];
    for (int i = 0; i < 16; i++)
        iv[i] = (unsigned char)(0xf0 + i);
    static const unsigned char pt[32] = {
        0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a,
        0xae, 0x2d, 0x8a, 0x57, 0x1e, 0x03, 0xac, 0x9c, 0x9e, 0xb7, 0x6f, 0xac, 0x45, 0xaf, 0x8e, 0x51};
    static const unsigned char ct[32] = {
        0x87, 0x4d, 0x61, 0x91, 0xb6, 0x20, 0xe3, 0x26, 0x1b, 0xef, 0x68, 0x64, 0x99, 0x0d, 0xb6, 0xce,
        0x98, 0x06, 0xf6, 0x6b, 0x79, 0x70, 0xfd, 0xff, 0x86, 0x17, 0x18, 0x7b, 0xb9, 0xff, 0xfd, 0xff};
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    cr_assert(EVP_CipherInit(c, EVP_aes_128_ctr(), key, iv, 1));
    cr_assert_str_eq(prov_name(c), "fluidctr");
    uint64_t before = fc_ssh_bulk_ctr_bytes();
    unsigned char out[32];
    cr_assert_eq(EVP_Cipher(c, out, pt, 16), 16);
    cr_assert_eq(EVP_Cipher(c, out + 16, pt + 16, 16), 16);
    cr_assert_arr_eq(out, ct, 32);
    cr_assert_gt(fc_ssh_bulk_ctr_bytes(), before);
    EVP_CIPHER_CTX_free(c);
}

Test(ssh_ctr, same_as_default_provider_in_any_pieces)
{
    static unsigned char in[LEN], want[LEN], got[LEN], back[LEN];
    cr_assert(RAND_bytes(in, LEN));
    for (int bits = 128; bits <= 256; bits += 64) {
        unsigned char key[32], iv[16];
        cr_assert(RAND_bytes(key, sizeof key) && RAND_bytes(iv, sizeof iv));
        iv[12] = iv[13] = iv[14] = iv[15] = 0xff; /* the 32-bit counter wraps early */
        reference(bits, key, iv, in, want, LEN);
        EVP_CIPHER_CTX *e = EVP_CIPHER_CTX_new(), *d = EVP_CIPHER_CTX_new();
        cr_assert(EVP_CipherInit(e, legacy(bits), key, iv, 1));
        cr_assert(EVP_CipherInit(d, legacy(bits), key, iv, 0));
        cr_assert_str_eq(prov_name(e), "fluidctr", "AES-%d-CTR", bits);
        cr_assert_eq(EVP_CIPHER_CTX_get_key_length(e), bits / 8);
        cr_assert_eq(EVP_CIPHER_CTX_get_iv_length(e), 16);
        cr_assert_eq(EVP_CIPHER_CTX_get_mode(e), EVP_CIPH_CTR_MODE);
        in_pieces(e, in, got, LEN);
        cr_assert(memcmp(got, want, LEN) == 0, "AES-%d-CTR differs from the default", bits);
        in_pieces(d, got, back, LEN);
        cr_assert(memcmp(back, in, LEN) == 0, "AES-%d-CTR does not decrypt", bits);
        EVP_CIPHER_CTX_free(e);
        EVP_CIPHER_CTX_free(d);
    }
}

Test(ssh_ctr, new_iv_and_copied_context)
{
    static unsigned char in[LEN], want[LEN], got[LEN], got2[LEN];
    unsigned char key[16], iv1[16], iv2[16];
    cr_assert(RAND_bytes(in, LEN) && RAND_bytes(key, 16) && RAND_bytes(iv1, 16) &&
              RAND_bytes(iv2, 16));
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    cr_assert(EVP_CipherInit(c, EVP_aes_128_ctr(), key, iv1, 1));
    in_pieces(c, in, got, 1000); /* part of a keystream buffer used under iv1 */
    cr_assert(EVP_CipherInit_ex(c, NULL, NULL, NULL, iv2, 1)); /* same key, new counter */
    reference(128, key, iv2, in, want, LEN);
    in_pieces(c, in, got, 5000);
    cr_assert(memcmp(got, want, 5000) == 0, "after a new IV the keystream must restart");
    /* an init with neither key nor IV goes on with the same stream */
    cr_assert(EVP_CipherInit_ex(c, NULL, NULL, NULL, NULL, 1));
    EVP_CIPHER_CTX *d = EVP_CIPHER_CTX_new();
    cr_assert(EVP_CIPHER_CTX_copy(d, c));
    in_pieces(c, in + 5000, got + 5000, LEN - 5000);
    in_pieces(d, in + 5000, got2 + 5000, LEN - 5000);
    cr_assert(memcmp(got + 5000, want + 5000, LEN - 5000) == 0);
    cr_assert(memcmp(got2 + 5000, want + 5000, LEN - 5000) == 0, "the copy must go on alike");
    EVP_CIPHER_CTX_free(c);
    EVP_CIPHER_CTX_free(d);
}

Test(ssh_ctr, wrong_key_length_is_refused)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    cr_assert(EVP_CipherInit_ex(c, EVP_aes_128_ctr(), NULL, NULL, NULL, 1));
    cr_assert_eq(EVP_CIPHER_CTX_set_key_length(c, 24), 0);
    unsigned char out[16], in[16] = {0};
    cr_assert_lt(EVP_Cipher(c, out, in, 16), 1, "no key: nothing may come out");
    EVP_CIPHER_CTX_free(c);
}
