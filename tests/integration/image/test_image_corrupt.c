/* SPDX-License-Identifier: Apache-2.0 */
/* Corrupted images: images made by qemu-img get header fields and table entries changed;
 * fluid-image must end with a clear error naming the problem (and its offset), a non-zero
 * fc_rc exit status, no sanitizer report, no signal, and nothing under the destination's
 * name. A seeded mutation pass flips random bytes in the metadata too. */
#include "imgtest.h"

static void setup(void) { t_setup("corrupt"); }

static char src[PATH_MAX];

static void
make(const char *name, const char *fmt, const char *opts, bool compress, char *p, size_t n)
{
    t_path(src, sizeof src, "src.raw");
    if (!t_exists(src))
        t_make_source(src);
    t_path(p, n, name);
    if (compress)
        T_RUN_OK(t_qemu_img, "convert", "-c", "-f", "raw", "-O", fmt, src, p);
    else
        T_RUN_OK(t_qemu_img, "convert", "-f", "raw", "-O", fmt, "-o", opts, src, p);
}

static void
copy_file(const char *from, const char *to)
{
    int a = open(from, O_RDONLY), b = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(a >= 0 && b >= 0);
    static char buf[1 << 16];
    ssize_t r;
    while ((r = read(a, buf, sizeof buf)) > 0)
        cr_assert_eq(write(b, buf, (size_t)r), r);
    close(a);
    close(b);
}

static uint64_t
get_be(const char *p, uint64_t off, int n)
{
    int fd = open(p, O_RDONLY);
    uint8_t b[8];
    cr_assert_eq(pread(fd, b, (size_t)n, (off_t)off), n);
    close(fd);
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | b[i];
    return v;
}

static uint64_t
get_le(const char *p, uint64_t off, int n)
{
    int fd = open(p, O_RDONLY);
    uint8_t b[8];
    cr_assert_eq(pread(fd, b, (size_t)n, (off_t)off), n);
    close(fd);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static void
put(const char *p, uint64_t off, uint64_t v, int n, bool le)
{
    uint8_t b[8];
    for (int i = 0; i < n; i++)
        b[le ? i : n - 1 - i] = (uint8_t)(v >> (8 * i));
    int fd = open(p, O_WRONLY);
    cr_assert_eq(pwrite(fd, b, (size_t)n, (off_t)off), n);
    close(fd);
}

#define PUT_BE(p, off, v, n) put((p), (off), (v), (n), false)
#define PUT_LE(p, off, v, n) put((p), (off), (v), (n), true)

/* Runs fluid-image on bad and checks the failure; want is a piece of the message. */
static void
expect_error(const char *fmt, const char *bad, const char *want)
{
    char out[PATH_MAX];
    t_path(out, sizeof out, "out.raw");
    unlink(out);
    const char *argv[] = {t_fluid, "convert", "-f", fmt, "-O", "qcow2", bad, out, NULL};
    int s = t_run(argv);
    cr_assert(s != SANITIZER_EXIT && s < 1000, "%s: sanitizer report or signal (%d): %s", bad,
              s, t_err);
    cr_assert(s >= 1 && s <= 16, "%s: expected an fc_rc exit status, got %d: %s", bad, s,
              t_err);
    cr_assert(strstr(t_err, want), "%s: the error should mention \"%s\": %s", bad, want, t_err);
    cr_assert(!t_exists(out), "%s: output left under the destination name", bad);
    t_no_temp("out.raw");
}

/* A copy of good named bad, for one case. */
static const char *
fresh(const char *good, char *bad, size_t n)
{
    t_path(bad, n, "bad");
    copy_file(good, bad);
    return bad;
}

Test(image_corrupt, qcow2, .init = setup, .fini = t_teardown)
{
    char g[PATH_MAX], b[PATH_MAX];
    make("good.qcow2", "qcow2", "compat=1.1", false, g, sizeof g);
    uint64_t l1 = get_be(g, 40, 8), cs = 1ull << get_be(g, 20, 4);
    (void)cs;
    uint64_t l2 = 0, l1e_at = 0, data_at = 0;
    for (uint64_t i = 0; !l2; i++) {
        l1e_at = l1 + i * 8;
        l2 = get_be(g, l1e_at, 8) & 0x00fffffffffffe00ull;
    }
    for (uint64_t j = 0; !data_at; j++)
        if (get_be(g, l2 + j * 8, 8) & 0x00fffffffffffe00ull)
            data_at = l2 + j * 8;
    struct stat st;
    stat(g, &st);

    PUT_BE(fresh(g, b, sizeof b), 0, 0x51464900, 4);
    expect_error("qcow2", b, "magic at offset 0");
    PUT_BE(fresh(g, b, sizeof b), 4, 7, 4);
    expect_error("qcow2", b, "version 7 at offset 4");
    PUT_BE(fresh(g, b, sizeof b), 20, 40, 4);
    expect_error("qcow2", b, "cluster_bits 40 at offset 20");
    PUT_BE(fresh(g, b, sizeof b), 24, 0x7fffffffffffffffull, 8);
    expect_error("qcow2", b, "absurd");
    PUT_BE(fresh(g, b, sizeof b), 36, 0, 4);
    expect_error("qcow2", b, "too small");
    PUT_BE(fresh(g, b, sizeof b), 40, 1ull << 44, 8);
    expect_error("qcow2", b, "passes the end of the file");
    PUT_BE(fresh(g, b, sizeof b), 40, 12345, 8);
    expect_error("qcow2", b, "multiple of the cluster size");
    PUT_BE(fresh(g, b, sizeof b), 32, 1, 4);
    expect_error("qcow2", b, "encrypted");
    PUT_BE(fresh(g, b, sizeof b), 72, 2, 8);
    expect_error("qcow2", b, "marked corrupt");
    PUT_BE(fresh(g, b, sizeof b), l1e_at, 1ull << 40, 8);
    expect_error("qcow2", b, "L2 table at offset 1099511627776");
    PUT_BE(fresh(g, b, sizeof b), l1e_at, l1, 8);
    expect_error("qcow2", b, "overlaps the L1 table");
    PUT_BE(fresh(g, b, sizeof b), l1e_at, l2 + 4096, 8);
    expect_error("qcow2", b, "not cluster aligned");
    PUT_BE(fresh(g, b, sizeof b), data_at, (uint64_t)st.st_size + cs, 8);
    expect_error("qcow2", b, "past the end of the file");
    PUT_BE(fresh(g, b, sizeof b), data_at, (get_be(g, data_at, 8) | 0x10) & ~(1ull << 63), 8);
    expect_error("qcow2", b, "reserved bits");
    fresh(g, b, sizeof b);
    cr_assert_eq(truncate(b, (off_t)(l2 + 16)), 0);
    expect_error("qcow2", b, "truncated");
    /* a backing file is refused, naming it */
    char ov[PATH_MAX], out[PATH_MAX];
    t_path(ov, sizeof ov, "overlay.qcow2");
    t_path(out, sizeof out, "out.raw");
    T_RUN_OK(t_qemu_img, "create", "-q", "-f", "qcow2", "-b", g, "-F", "qcow2", ov);
    expect_error("qcow2", ov, "backing file");
}

Test(image_corrupt, qcow2_compressed, .init = setup, .fini = t_teardown)
{
    char g[PATH_MAX], b[PATH_MAX];
    make("good-c.qcow2", "qcow2", NULL, true, g, sizeof g);
    uint64_t l1 = get_be(g, 40, 8), cb = get_be(g, 20, 4), l2 = 0, ent_at = 0, ent = 0;
    for (uint64_t i = 0; !l2; i++)
        l2 = get_be(g, l1 + i * 8, 8) & 0x00fffffffffffe00ull;
    for (uint64_t j = 0; !ent_at; j++) {
        uint64_t e = get_be(g, l2 + j * 8, 8);
        if (e & (1ull << 62))
            ent_at = l2 + j * 8, ent = e;
    }
    unsigned x = 62 - (unsigned)(cb - 8);
    uint64_t host = ent & ((1ull << x) - 1);
    /* the compressed bytes replaced with garbage */
    fresh(g, b, sizeof b);
    for (int i = 0; i < 64; i++)
        PUT_BE(b, host + (uint64_t)i * 8, 0xfffefdfcfbfaf9f8ull, 8);
    expect_error("qcow2", b, "compressed cluster at offset");
    /* a valid deflate stream of the wrong length: a final empty stored block */
    fresh(g, b, sizeof b);
    PUT_BE(b, host, 0x010000ffffull, 5);
    expect_error("qcow2", b, "inflates to 0 bytes, expected 65536");
    /* pointing into the header */
    PUT_BE(fresh(g, b, sizeof b), ent_at, (ent & ~((1ull << x) - 1)) | 100, 8);
    expect_error("qcow2", b, "overlaps the header");
}

Test(image_corrupt, vmdk, .init = setup, .fini = t_teardown)
{
    char g[PATH_MAX], b[PATH_MAX];
    make("good.vmdk", "vmdk", "subformat=monolithicSparse", false, g, sizeof g);
    uint64_t gd = get_le(g, 56, 8) * 512, gt = get_le(g, gd, 4) * 512;
    uint64_t gte_at = 0;
    for (uint64_t j = 0; !gte_at; j++)
        if (get_le(g, gt + j * 4, 4))
            gte_at = gt + j * 4;
    PUT_LE(fresh(g, b, sizeof b), 12, 0x00ffffffffffffffull, 8);
    expect_error("vmdk", b, "absurd");
    PUT_LE(fresh(g, b, sizeof b), 20, 3, 8);
    expect_error("vmdk", b, "grain size 3 sectors at offset 20");
    PUT_LE(fresh(g, b, sizeof b), 44, 0, 4);
    expect_error("vmdk", b, "numGTEsPerGT 0 at offset 44");
    PUT_LE(fresh(g, b, sizeof b), 56, 1ull << 40, 8);
    expect_error("vmdk", b, "outside the file");
    PUT_LE(fresh(g, b, sizeof b), gd, gd / 512, 4);
    expect_error("vmdk", b, "overlaps the directory");
    PUT_LE(fresh(g, b, sizeof b), gte_at, 0x7fffffff, 4);
    expect_error("vmdk", b, "past the end of the file");
    PUT_LE(fresh(g, b, sizeof b), 77, 9, 2);
    PUT_LE(b, 8, get_le(g, 8, 4) | (1u << 16), 4);
    expect_error("vmdk", b, "compression algorithm 9");
}

Test(image_corrupt, vmdk_stream, .init = setup, .fini = t_teardown)
{
    char g[PATH_MAX], b[PATH_MAX], f[PATH_MAX], out[PATH_MAX];
    make("good-s.vmdk", "vmdk", "subformat=streamOptimized", false, g, sizeof g);
    /* qemu-img puts the directory in the header: find a compressed grain through it */
    uint64_t gd = get_le(g, 56, 8) * 512, gt = get_le(g, gd, 4) * 512, grain = 0;
    for (uint64_t j = 0; !grain; j++)
        grain = get_le(g, gt + j * 4, 4) * 512;
    fresh(g, b, sizeof b);
    for (int i = 0; i < 32; i++)
        PUT_LE(b, grain + 12 + (uint64_t)i * 8, 0xfffefdfcfbfaf9f8ull, 8);
    expect_error("vmdk", b, "compressed grain at offset");
    PUT_LE(fresh(g, b, sizeof b), grain + 8, 0x7fffffff, 4);
    expect_error("vmdk", b, "grain marker at offset");
    /* the same from a pipe, read marker by marker */
    t_path(out, sizeof out, "pipe.raw");
    const char *argv[] = {t_fluid, "convert", "-f", "vmdk", "-O", "raw", "-", "-", NULL};
    int s = t_pipeline(b, argv, out);
    cr_assert(s >= 1 && s <= 16, "pipe: status %d", s);
    /* fluid-image's own streamOptimized (directory at the end): footer cut off */
    t_path(f, sizeof f, "mine.vmdk");
    T_RUN_OK(t_fluid, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", src, f);
    fresh(f, b, sizeof b);
    struct stat st;
    stat(b, &st);
    cr_assert_eq(truncate(b, st.st_size - 512), 0);
    expect_error("vmdk", b, "footer");
}

static uint32_t
vhd_sum(const char *p, uint64_t off, size_t len, size_t skip)
{
    int fd = open(p, O_RDONLY);
    uint8_t buf[1024];
    cr_assert_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
    uint32_t s = 0;
    for (size_t i = 0; i < len; i++)
        if (i < skip || i >= skip + 4)
            s += buf[i];
    return ~s;
}

/* Writes a header field and fixes the checksum, so that the field itself is what is bad. */
static void
vhd_put(const char *p, uint64_t hdr, size_t hlen, size_t csum_at, uint64_t off, uint64_t v,
        int n)
{
    PUT_BE(p, hdr + off, v, n);
    PUT_BE(p, hdr + csum_at, vhd_sum(p, hdr, hlen, csum_at), 4);
}

Test(image_corrupt, vpc, .init = setup, .fini = t_teardown)
{
    char g[PATH_MAX], b[PATH_MAX], fx[PATH_MAX];
    make("good.vhd", "vpc", "subformat=dynamic", false, g, sizeof g);
    uint64_t dyn = get_be(g, 16, 8), bat = get_be(g, dyn + 16, 8), bat_at = 0;
    for (uint64_t i = 0; !bat_at; i++)
        if (get_be(g, bat + i * 4, 4) != 0xffffffffu)
            bat_at = bat + i * 4;
    PUT_BE(fresh(g, b, sizeof b), 28, 0x41424344, 4);
    expect_error("vpc", b, "checksum mismatch at offset 64");
    vhd_put(fresh(g, b, sizeof b), 0, 512, 64, 60, 9, 4);
    expect_error("vpc", b, "disk type 9");
    vhd_put(fresh(g, b, sizeof b), 0, 512, 64, 48, 1ull << 60, 8);
    expect_error("vpc", b, "absurd");
    PUT_BE(fresh(g, b, sizeof b), dyn, 0x41414141, 4);
    expect_error("vpc", b, "dynamic header cookie");
    vhd_put(fresh(g, b, sizeof b), dyn, 1024, 36, 16, 1ull << 40, 8);
    expect_error("vpc", b, "BAT at offset");
    vhd_put(fresh(g, b, sizeof b), dyn, 1024, 36, 32, 3, 4);
    expect_error("vpc", b, "block size 3");
    PUT_BE(fresh(g, b, sizeof b), bat_at, 0x7ffffff0u, 4);
    expect_error("vpc", b, "past the end of the file");
    PUT_BE(fresh(g, b, sizeof b), bat_at, (uint32_t)(bat / 512), 4);
    expect_error("vpc", b, "overlaps the BAT");
    /* fixed: data cut short before the footer */
    make("good-f.vhd", "vpc", "subformat=fixed", false, fx, sizeof fx);
    struct stat st;
    stat(fx, &st);
    fresh(fx, b, sizeof b);
    int fd = open(b, O_RDWR);
    uint8_t foot[512];
    cr_assert_eq(pread(fd, foot, 512, st.st_size - 512), 512);
    cr_assert_eq(pwrite(fd, foot, 512, 1 << 20), 512);
    cr_assert_eq(ftruncate(fd, (1 << 20) + 512), 0);
    close(fd);
    expect_error("vpc", b, "truncated fixed VHD");
}

/* Seeded random mutations of metadata: any outcome but a crash, a sanitizer report or a
 * leftover output. */
Test(image_corrupt, mutations, .init = setup, .fini = t_teardown)
{
    static const struct {
        const char *name, *fmt, *opts;
        bool c;
    } imgs[] = {
        {"m.qcow2", "qcow2", "compat=1.1", false}, {"mc.qcow2", "qcow2", NULL, true},
        {"m.vmdk", "vmdk", "subformat=monolithicSparse", false},
        {"ms.vmdk", "vmdk", "subformat=streamOptimized", false},
        {"m.vhd", "vpc", "subformat=dynamic", false},
    };
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char g[PATH_MAX], b[PATH_MAX], out[PATH_MAX];
    t_path(out, sizeof out, "mut.out");
    for (size_t i = 0; i < sizeof imgs / sizeof imgs[0]; i++) {
        make(imgs[i].name, imgs[i].fmt, imgs[i].opts, imgs[i].c, g, sizeof g);
        struct stat st;
        stat(g, &st);
        for (unsigned m = 0; m < 30; m++) {
            fresh(g, b, sizeof b);
            int fd = open(b, O_WRONLY);
            int flips = 1 + m % 4;
            for (int k = 0; k < flips; k++) {
                seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                /* mostly the first 256 KiB (headers and tables), sometimes anywhere */
                uint64_t span = (seed >> 60) < 12 ? 262144 : (uint64_t)st.st_size;
                if (span > (uint64_t)st.st_size)
                    span = (uint64_t)st.st_size;
                uint8_t v = (uint8_t)(seed >> 24);
                cr_assert_eq(pwrite(fd, &v, 1, (off_t)((seed >> 8) % span)), 1);
            }
            close(fd);
            unlink(out);
            const char *argv[] = {t_fluid, "convert", "-f", imgs[i].fmt, "-O", "qcow2", b,
                                  out, NULL};
            int s = t_run(argv);
            cr_assert(s != SANITIZER_EXIT && s < 1000,
                      "%s mutation %u: sanitizer report or signal (%d): %s", imgs[i].name, m,
                      s, t_err);
            if (s == 0)
                t_check("qcow2", out);
            else
                cr_assert(!t_exists(out), "%s mutation %u: output left behind", imgs[i].name, m);
            t_no_temp("mut.out");
        }
    }
}
