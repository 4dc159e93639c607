/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-checksum: a pass-through stage that computes the SHA-256 of the content it carries
 * (zero runs included), reads and writes the framed stream or plain bytes, can start a chain
 * from a file or generated data and end it into a file. See fluid-checksum.1. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/migrator.h"
#include "fluid/sha256.h"
#include "fluid/stream.h"

struct ck {
    struct fc_sink sink; /* first */
    struct fc_sink *next;
    struct fc_migrator *m;
    struct fc_sha256 sha;
    uint64_t size, pos, zero;
    const struct fc_stream_stats *in, *out;
    const char *expect;  /* hex, or NULL */
    uint8_t digest[32];
};

static void
progress(struct ck *c, bool force)
{
    json_t *x = json_pack("{s:I,s:I,s:I}", "bytes_in", (json_int_t)(c->in ? c->in->bytes_io : 0),
                          "bytes_out", (json_int_t)c->out->bytes_io, "zero_bytes",
                          (json_int_t)c->zero);
    fc_event_progress(c->m, c->pos, c->size, x, force);
}

static fc_rc
ck_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct ck *c = (struct ck *)s;
    c->size = info->size;
    return c->next->begin(c->next, info);
}

static fc_rc
ck_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct ck *c = (struct ck *)s;
    if (off != c->pos)
        return FC_ERR(FC_E_INTERNAL, "checksum: write at %" PRIu64 ", expected %" PRIu64, off,
                      c->pos);
    fc_sha256_update(&c->sha, buf, len);
    c->pos += len;
    fc_rc rc = c->next->write(c->next, off, buf, len);
    progress(c, false);
    return rc;
}

static fc_rc
ck_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    struct ck *c = (struct ck *)s;
    if (off != c->pos)
        return FC_ERR(FC_E_INTERNAL, "checksum: zero run at %" PRIu64 ", expected %" PRIu64, off,
                      c->pos);
    fc_sha256_update_zeros(&c->sha, len);
    c->pos += len;
    c->zero += len;
    fc_rc rc = c->next->zero(c->next, off, len);
    progress(c, false);
    return rc;
}

static fc_rc
ck_end(struct fc_sink *s, uint64_t size, const uint8_t *sha256)
{
    struct ck *c = (struct ck *)s;
    fc_sha256_final(&c->sha, c->digest);
    char hex[65];
    fc_hex(c->digest, 32, hex);
    if (sha256 && memcmp(sha256, c->digest, 32) != 0) {
        char up[65];
        fc_hex(sha256, 32, up);
        return FC_ERR(FC_E_CHECKSUM, "checksum: content hashes to %s but its END says %s", hex,
                      up);
    }
    if (c->expect && strcasecmp(c->expect, hex) != 0)
        return FC_ERR(FC_E_CHECKSUM, "checksum: content hashes to %s, expected %s", hex,
                      c->expect);
    (void)size;
    return c->next->end(c->next, c->pos, c->digest);
}

/* True when fd starts with the framed stream's preamble; consumes nothing. */
static bool
peek_framed(int fd)
{
    struct stat st;
    uint8_t b[FC_STREAM_MAGIC_LEN];
    if (fstat(fd, &st) != 0)
        return false;
    if (S_ISREG(st.st_mode)) {
        off_t at = lseek(fd, 0, SEEK_CUR);
        return at >= 0 && pread(fd, b, sizeof b, at) == (ssize_t)sizeof b &&
               memcmp(b, FC_STREAM_MAGIC, sizeof b) == 0;
    }
    if (!S_ISFIFO(st.st_mode))
        return false;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return false;
    bool framed = false;
    for (;;) {
        ssize_t n = tee(fd, p[1], sizeof b, 0);
        if (n <= 0)
            break;
        size_t got;
        if (fc_read_full(p[0], b, (size_t)n, &got) != FC_OK)
            break;
        if (n >= (ssize_t)sizeof b) {
            framed = memcmp(b, FC_STREAM_MAGIC, sizeof b) == 0;
            break;
        }
        if (memcmp(b, FC_STREAM_MAGIC, (size_t)n) != 0)
            break;
        /* fewer than 8 bytes so far: wait for more, or for the writer to close */
        struct pollfd pf = {fd, POLLIN, 0};
        poll(&pf, 1, 10);
        if (pf.revents & POLLHUP) {
            n = tee(fd, p[1], sizeof b, 0);
            if (n < (ssize_t)sizeof b)
                break;
        }
    }
    close(p[0]);
    close(p[1]);
    return framed;
}

static fc_rc
parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return FC_ERR(FC_E_INVALID, "--generate: \"%s\" is not a size", s);
    uint64_t mul = 1;
    switch (*end) {
    case 'K': case 'k': mul = 1ull << 10; end++; break;
    case 'M': case 'm': mul = 1ull << 20; end++; break;
    case 'G': case 'g': mul = 1ull << 30; end++; break;
    default: break;
    }
    if (*end || v > UINT64_MAX / mul)
        return FC_ERR(FC_E_INVALID, "--generate: \"%s\" is not a size (N, NK, NM, NG)", s);
    *out = v * mul;
    return FC_OK;
}

/* Generated content: 1 MiB blocks of pseudo-random bytes, every fourth block zeros. */
static fc_rc
generate(struct fc_sink *s, uint64_t size, uint64_t seed)
{
    struct fc_stream_info info = {.size = size, .format = "raw"};
    fc_rc rc = s->begin(s, &info);
    FC_AUTOFREE uint64_t *buf = malloc(1 << 20);
    if (!buf)
        return FC_ERR(FC_E_NOMEM, "checksum: out of memory");
    for (uint64_t off = 0, b = 0; rc == FC_OK && off < size; b++) {
        if (fc_cancel_requested)
            return FC_ERR(FC_E_CANCELLED, "checksum: cancelled at offset %" PRIu64, off);
        size_t len = size - off < (1u << 20) ? (size_t)(size - off) : (1u << 20);
        if (b % 4 == 3) {
            rc = s->zero(s, off, len);
        } else {
            uint64_t x = (seed ^ (b * 0x9E3779B97F4A7C15ull)) | 1;
            for (size_t i = 0; i < (len + 7) / 8; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf[i] = x;
            }
            rc = s->write(s, off, buf, len);
        }
        off += len;
    }
    if (rc == FC_OK)
        rc = s->end(s, size, NULL);
    return rc;
}

static void
usage(void)
{
    fprintf(stderr, "usage: fluid-checksum [--framed|--plain] [--expect HEX]\n"
                    "                      [--source FILE | --generate SIZE[:SEED]] [--sink FILE]\n");
}

int
main(int argc, char **argv)
{
    struct fc_migrator m;
    fc_rc rc = fc_migrator_init(&m, "fluid-checksum", &argc, argv);
    if (rc != FC_OK)
        return fc_migrator_finish(&m, rc);
    enum { OPT_FRAMED = 1, OPT_PLAIN, OPT_EXPECT, OPT_SOURCE, OPT_SINK, OPT_GENERATE, OPT_HELP };
    static const struct option opts[] = {
        {"framed", no_argument, NULL, OPT_FRAMED},   {"plain", no_argument, NULL, OPT_PLAIN},
        {"expect", required_argument, NULL, OPT_EXPECT},
        {"source", required_argument, NULL, OPT_SOURCE},
        {"sink", required_argument, NULL, OPT_SINK},
        {"generate", required_argument, NULL, OPT_GENERATE},
        {"help", no_argument, NULL, OPT_HELP},       {NULL, 0, NULL, 0}};
    int out_mode = -1; /* -1 same as input, 0 plain, 1 framed */
    const char *expect = NULL, *source = NULL, *sinkpath = NULL, *gen = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_FRAMED: out_mode = 1; break;
        case OPT_PLAIN: out_mode = 0; break;
        case OPT_EXPECT: expect = optarg; break;
        case OPT_SOURCE: source = optarg; break;
        case OPT_SINK: sinkpath = optarg; break;
        case OPT_GENERATE: gen = optarg; break;
        case OPT_HELP: usage(); return 0;
        default:
            usage();
            return fc_migrator_finish(
                &m, FC_ERR(FC_E_INVALID, "argument %d: unknown option \"%s\"", optind - 1,
                           argv[optind - 1]));
        }
    }
    if (optind < argc)
        return fc_migrator_finish(
            &m, FC_ERR(FC_E_INVALID, "unexpected argument \"%s\"", argv[optind]));
    uint8_t tmp[32];
    if (expect && (strlen(expect) != 64 || !fc_unhex(expect, tmp, 32)))
        return fc_migrator_finish(&m, FC_ERR(FC_E_INVALID, "--expect: not 64 hex digits"));
    if (source && gen)
        return fc_migrator_finish(&m, FC_ERR(FC_E_INVALID, "--source and --generate exclude "
                                                           "each other"));
    uint64_t gsize = 0, gseed = 1;
    if (gen) {
        char buf[64];
        snprintf(buf, sizeof buf, "%s", gen);
        char *colon = strchr(buf, ':');
        if (colon) {
            *colon = '\0';
            gseed = strtoull(colon + 1, NULL, 10);
        }
        if ((rc = parse_size(buf, &gsize)) != FC_OK)
            return fc_migrator_finish(&m, rc);
    }

    FC_AUTOCLOSE int in = -1;
    if (source && (in = open(source, O_RDONLY | O_CLOEXEC)) < 0)
        return fc_migrator_finish(&m, FC_ERRNO(FC_E_IO, "--source %s", source));
    int in_fd = source ? in : 0;
    bool framed_in = gen ? true : peek_framed(in_fd);
    /* under a broker, a task with "framed": false wants plain bytes between its stages */
    json_t *tf = m.task ? json_object_get(m.task, "framed") : NULL;
    if (out_mode < 0 && json_is_false(tf))
        out_mode = 0;
    bool framed_out = out_mode < 0 ? (sinkpath ? false : framed_in) : out_mode == 1;

    FC_AUTOCLOSE int out = -1;
    char tmppath[PATH_MAX] = "";
    if (sinkpath) {
        if (snprintf(tmppath, sizeof tmppath, "%s.tmp.XXXXXX", sinkpath) >= (int)sizeof tmppath)
            return fc_migrator_finish(&m, FC_ERR(FC_E_INVALID, "--sink: path too long"));
        if ((out = mkstemp(tmppath)) < 0)
            return fc_migrator_finish(&m, FC_ERRNO(FC_E_IO, "--sink %s", sinkpath));
        fchmod(out, 0644);
    }
    struct fc_stream_writer w;
    fc_stream_writer_init(&w, sinkpath ? out : 1, framed_out);
    struct fc_stream_stats in_stats = {0};
    struct ck ck = {.sink = {ck_begin, ck_write, ck_zero, ck_end},
                    .next = &w.sink,
                    .m = &m,
                    .size = FC_SIZE_UNKNOWN,
                    .in = gen ? NULL : &in_stats,
                    .out = &w.stats,
                    .expect = expect};
    if ((rc = fc_sha256_init(&ck.sha)) == FC_OK) {
        if (gen) {
            rc = generate(&ck.sink, gsize, gseed);
        } else {
            struct fc_stream_reader_opts ro = {.verify = false, .hash_plain = false,
                                               .cancel = &fc_cancel_requested};
            rc = fc_stream_read(in_fd, &ck.sink, &ro, &in_stats);
        }
    }
    fc_sha256_free(&ck.sha);
    if (rc == FC_OK && sinkpath) {
        if (fsync(out) != 0 || rename(tmppath, sinkpath) != 0)
            rc = FC_ERRNO(FC_E_IO, "--sink %s", sinkpath);
        else
            tmppath[0] = '\0';
    }
    if (rc != FC_OK) {
        if (framed_out)
            fc_stream_writer_abort(&w, rc, fc_error_msg());
        if (tmppath[0])
            unlink(tmppath);
        fc_stream_writer_fini(&w);
        return fc_migrator_finish(&m, rc);
    }
    progress(&ck, true);
    char hex[65];
    fc_hex(ck.digest, 32, hex);
    json_t *res = json_pack("{s:s,s:I,s:I,s:I,s:I,s:b,s:b}", "sha256", hex, "bytes",
                            (json_int_t)ck.pos, "zero_bytes", (json_int_t)ck.zero, "bytes_in",
                            (json_int_t)in_stats.bytes_io, "bytes_out",
                            (json_int_t)w.stats.bytes_io, "framed_in", framed_in, "framed_out",
                            framed_out);
    fc_log(FC_INFO, FC_MSG("checksum done"), FC_STR("sha256", hex), FC_U64("bytes", ck.pos));
    fc_stream_writer_fini(&w);
    if (m.events_fd < 0) {
        /* by hand: the digest on stderr, like sha256sum but without touching stdout's data */
        fprintf(stderr, "%s  %" PRIu64 " bytes\n", hex, ck.pos);
    }
    fc_event_done(&m, res);
    return fc_migrator_finish(&m, FC_OK);
}
