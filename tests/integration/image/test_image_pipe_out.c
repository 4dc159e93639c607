/* SPDX-License-Identifier: Apache-2.0 */
/* Planned streaming output, against the real qemu-img: qcow2 (v3, compat=0.10, 512-byte
 * clusters), dynamic VHD and monolithicSparse VMDK written to a pipe from raw, qcow2, vmdk
 * and vpc files with scattered data, zero runs and an unaligned size. Each output is
 * identical to its input for qemu-img compare, clean for qemu-img check, byte-identical to
 * the file output (but for VMDK's and VHD's random identifiers), made without any temporary
 * file (the spool folder does not exist, and the events say which path ran). Compressed
 * qcow2 still spools, and says so; a 64 GiB sparse image stays under 64 MiB of RSS. */
#include <jansson.h>
#include <sys/resource.h>

#include "imgtest.h"

struct fmt {
    const char *name, *qfmt, *opts;
    bool compress;
};

static const struct fmt inputs[] = {
    {"raw", "raw", NULL, false},
    {"v3.qcow2", "qcow2", "compat=1.1", false},
    {"v2.qcow2", "qcow2", "compat=0.10", false},
    {"c.qcow2", "qcow2", NULL, true},
    {"sparse.vmdk", "vmdk", "subformat=monolithicSparse", false},
    {"dyn.vhd", "vpc", "subformat=dynamic", false},
};

static const struct fmt outputs[] = {
    {"v3.qcow2", "qcow2", "compat=1.1", false},
    {"v2.qcow2", "qcow2", "compat=0.10", false},
    {"512.qcow2", "qcow2", "cluster_size=512", false}, /* refcount blocks mid-stream */
    {"dyn.vhd", "vpc", "subformat=dynamic", false},
    {"sparse.vmdk", "vmdk", "subformat=monolithicSparse", false},
};

static void setup(void) { t_setup("pipeout"); }

static void
make_input(const struct fmt *in, char *p, size_t n)
{
    char src[PATH_MAX];
    t_path(src, sizeof src, "src.raw");
    if (!t_exists(src))
        t_make_source(src);
    if (strcmp(in->qfmt, "raw") == 0) {
        snprintf(p, n, "%s", src);
        return;
    }
    char name[64];
    snprintf(name, sizeof name, "in-%s", in->name);
    t_path(p, n, name);
    if (in->compress)
        T_RUN_OK(t_qemu_img, "convert", "-c", "-f", "raw", "-O", in->qfmt, src, p);
    else
        T_RUN_OK(t_qemu_img, "convert", "-f", "raw", "-O", in->qfmt, "-o", in->opts, src, p);
}

/* What one run of fluid-image said on its events descriptor. */
struct run {
    int status;              /* exit status, or 1000 + signal */
    struct rusage ru;
    char notes[4096];        /* "note: detail" lines */
    json_t *result;          /* the done event's result, or NULL */
    int mapping;             /* progress events of the mapping pass */
    char err[8192];          /* its stderr */
};

/* Runs fluid-image --events-fd 3 with args, stdin from in_path (a pipe fed by cat when
 * in_pipe) and stdout through a pipe into cat > out. */
static void
run_piped(struct run *r, const char *const *args, const char *in_path, bool in_pipe,
          const char *out)
{
    memset(r, 0, sizeof *r);
    const char *argv[40];
    size_t k = 0;
    argv[k++] = t_fluid;
    argv[k++] = "--events-fd";
    argv[k++] = "3";
    for (size_t i = 0; args[i]; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    int ev[2], o[2], in[2] = {-1, -1};
    cr_assert_eq(pipe2(ev, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(o, O_CLOEXEC), 0);
    char errp[PATH_MAX];
    t_path(errp, sizeof errp, "stderr.txt");
    int efd = open(errp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int ifd = in_path ? open(in_path, O_RDONLY | O_CLOEXEC) : -1;
    cr_assert(efd >= 0 && ofd >= 0 && (!in_path || ifd >= 0));
    pid_t feeder = -1, fl, sink;
    if (in_pipe) {
        cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
        const char *c[] = {t_cat, NULL};
        struct fc_spawn s = {.argv = c, .fd = {ifd, in[1], 2}};
        cr_assert_eq(fc_spawn(&s, &feeder), FC_OK);
        close(in[1]);
    }
    struct fc_spawn sf = {.argv = argv, .fd = {in_pipe ? in[0] : ifd, o[1], efd},
                          .pass = &ev[1], .npass = 1};
    cr_assert_eq(fc_spawn(&sf, &fl), FC_OK);
    const char *c2[] = {t_cat, NULL};
    struct fc_spawn sc = {.argv = c2, .fd = {o[0], ofd, 2}};
    cr_assert_eq(fc_spawn(&sc, &sink), FC_OK);
    close(ev[1]);
    close(o[0]);
    close(o[1]);
    close(ofd);
    if (in_pipe)
        close(in[0]);
    if (ifd >= 0)
        close(ifd);
    static char buf[1 << 20];
    size_t len = 0;
    ssize_t n;
    while ((n = read(ev[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    close(ev[0]);
    buf[len] = '\0';
    int st;
    while (wait4(fl, &st, 0, &r->ru) < 0)
        cr_assert_eq(errno, EINTR);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
    cr_assert_eq(t_wait(sink), 0, "cat > %s failed", out);
    if (feeder > 0)
        t_wait(feeder);
    n = pread(efd, r->err, sizeof r->err - 1, 0);
    r->err[n > 0 ? n : 0] = '\0';
    close(efd);
    size_t nl = 0;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *e = json_loads(line, 0, NULL);
        cr_assert_not_null(e, "event is not JSON: %s", line);
        const char *kind = json_string_value(json_object_get(e, "event"));
        json_t *note = json_object_get(e, "note");
        if (json_is_string(note) && nl < sizeof r->notes)
            nl += (size_t)snprintf(r->notes + nl, sizeof r->notes - nl, "%s: %s\n",
                                   json_string_value(note),
                                   json_string_value(json_object_get(e, "detail")));
        if (kind && strcmp(kind, "done") == 0)
            r->result = json_incref(json_object_get(e, "result"));
        const char *phase = json_string_value(json_object_get(e, "phase"));
        if (kind && strcmp(kind, "progress") == 0 && phase && strcmp(phase, "mapping") == 0) {
            cr_assert_eq(json_integer_value(json_object_get(e, "done")), 0,
                         "no content is done while mapping");
            r->mapping++;
        }
        json_decref(e);
    }
}

static const char *
result_str(const struct run *r, const char *key)
{
    return json_string_value(json_object_get(r->result, key));
}

/* The output path the events name, checked both ways: the note and the done result. */
static void
assert_planned(const struct run *r, const char *what)
{
    cr_assert_eq(r->status, 0, "%s: status %d: %s", what, r->status, r->err);
    cr_assert(strstr(r->notes, "planned streaming output: "), "%s: no planned note: %s", what,
              r->notes);
    cr_assert(!strstr(r->notes, "spooling output"), "%s: the output was spooled: %s", what,
              r->notes);
    cr_assert_gt(r->mapping, 0, "%s: no progress event from the mapping pass", what);
    cr_assert_not_null(r->result, "%s: no done event", what);
    cr_assert_str_eq(result_str(r, "output"), "planned", "%s", what);
}

static uint8_t *
slurp(const char *p, size_t *len)
{
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s", p);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    *len = (size_t)st.st_size;
    uint8_t *b = malloc(*len ? *len : 1);
    cr_assert_eq(pread(fd, b, *len, 0), (ssize_t)*len);
    close(fd);
    return b;
}

/* Blanks what is random in each run: the VMDK descriptor's CID; the VHD footer's
 * timestamp, checksum and unique id, at the start and at the end. */
static void
blank_random(const char *qfmt, uint8_t *b, size_t len)
{
    if (strcmp(qfmt, "vmdk") == 0) {
        char *cid = memmem(b, len < 16384 ? len : 16384, "CID=", 4);
        cr_assert_not_null(cid, "no CID in the VMDK descriptor");
        memset(cid + 4, 'x', 8);
    } else if (strcmp(qfmt, "vpc") == 0) {
        cr_assert_geq(len, 1024);
        for (int i = 0; i < 2; i++) {
            uint8_t *f = i ? b + len - 512 : b;
            cr_assert(memcmp(f, "conectix", 8) == 0, "no VHD footer %s", i ? "at the end" : "copy");
            memset(f + 24, 0, 4);
            memset(f + 64, 0, 20);
        }
    }
}

static void
assert_same_bytes(const char *qfmt, const char *a, const char *b, const char *what)
{
    size_t la, lb;
    uint8_t *x = slurp(a, &la), *y = slurp(b, &lb);
    cr_assert_eq(la, lb, "%s: pipe output %zu bytes, file output %zu", what, la, lb);
    blank_random(qfmt, x, la);
    blank_random(qfmt, y, lb);
    for (size_t i = 0; i < la; i++)
        if (x[i] != y[i])
            cr_assert_fail("%s: pipe output differs from file output at byte %zu", what, i);
    free(x);
    free(y);
}

/* Every planned output from one input: to a pipe with a spool folder that does not exist
 * (a temporary file would fail the run), then checked against qemu-img and the file path. */
static void
planned_from(const struct fmt *in)
{
    char ip[PATH_MAX], nodir[PATH_MAX], pp[PATH_MAX], fp[PATH_MAX];
    make_input(in, ip, sizeof ip);
    t_path(nodir, sizeof nodir, "no-such-folder");
    t_path(pp, sizeof pp, "pipe.out");
    t_path(fp, sizeof fp, "disk.vmdk"); /* the name a VMDK piped to stdout gets */
    for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++) {
        const struct fmt *out = &outputs[i];
        char what[128];
        snprintf(what, sizeof what, "%s -> %s", in->name, out->name);
        const char *args[] = {"convert", "--tmpdir", nodir, "-f", in->qfmt, "-O", out->qfmt,
                              "-o", out->opts, ip, "-", NULL};
        struct run r;
        run_piped(&r, args, NULL, false, pp);
        assert_planned(&r, what);
        cr_assert(strstr(r.notes, out->qfmt), "%s: the note names the format: %s", what,
                  r.notes);
        json_decref(r.result);
        t_compare(in->qfmt, ip, out->qfmt, pp);
        t_check(out->qfmt, pp);
        T_RUN_OK(t_fluid, "convert", "-f", in->qfmt, "-O", out->qfmt, "-o", out->opts, ip, fp);
        assert_same_bytes(out->qfmt, pp, fp, what);
        unlink(pp);
        unlink(fp);
    }
    t_no_temp("disk.vmdk");
}

Test(image_pipe_out, from_raw, .init = setup, .fini = t_teardown) { planned_from(&inputs[0]); }
Test(image_pipe_out, from_qcow2_v3, .init = setup, .fini = t_teardown) { planned_from(&inputs[1]); }
Test(image_pipe_out, from_qcow2_v2, .init = setup, .fini = t_teardown) { planned_from(&inputs[2]); }
Test(image_pipe_out, from_qcow2_compressed, .init = setup, .fini = t_teardown)
{
    planned_from(&inputs[3]);
}
Test(image_pipe_out, from_vmdk_sparse, .init = setup, .fini = t_teardown)
{
    planned_from(&inputs[4]);
}
Test(image_pipe_out, from_vpc_dynamic, .init = setup, .fini = t_teardown)
{
    planned_from(&inputs[5]);
}

/* Compressed qcow2 cannot be planned: it is spooled, the events say why, and without a
 * spool folder it fails (the control for the tests above: a spool would have failed them). */
Test(image_pipe_out, compressed_qcow2_is_spooled, .init = setup, .fini = t_teardown)
{
    char ip[PATH_MAX], nodir[PATH_MAX], pp[PATH_MAX];
    make_input(&inputs[1], ip, sizeof ip);
    t_path(nodir, sizeof nodir, "no-such-folder");
    t_path(pp, sizeof pp, "c.out");
    const char *bad[] = {"convert", "--tmpdir", nodir, "-c", "-O", "qcow2", ip, "-", NULL};
    struct run r;
    run_piped(&r, bad, NULL, false, pp);
    cr_assert_neq(r.status, 0, "a spool in a missing folder must fail");
    cr_assert(strstr(r.err, "spool file"), "the error names the spool file: %s", r.err);
    json_decref(r.result);
    const char *ok[] = {"convert", "-c", "-O", "qcow2", ip, "-", NULL};
    run_piped(&r, ok, NULL, false, pp);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.notes, "spooling output to a temporary file: compressed"), "%s",
              r.notes);
    cr_assert(!strstr(r.notes, "planned streaming output"), "%s", r.notes);
    cr_assert_str_eq(result_str(&r, "output"), "spooled");
    json_decref(r.result);
    t_compare("qcow2", ip, "qcow2", pp);
    t_check("qcow2", pp);
}

/* Pipe in, pipe out: the input is spooled (a random-access format, or plain bytes without
 * a size), then the output is planned from the spooled copy: no output spool. */
Test(image_pipe_out, pipe_in_spools_input_plans_output, .init = setup, .fini = t_teardown)
{
    static const struct { int in; const char *ofmt; } cases[] = {
        {1, "vpc"}, {0, "qcow2"}, {5, "vmdk"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct fmt *in = &inputs[cases[i].in];
        char ip[PATH_MAX], pp[PATH_MAX];
        make_input(in, ip, sizeof ip);
        t_path(pp, sizeof pp, "pp.out");
        const char *args[] = {"convert", "-O", cases[i].ofmt, "-", "-", NULL};
        struct run r;
        run_piped(&r, args, ip, true, pp);
        assert_planned(&r, in->name);
        cr_assert(strstr(r.notes, "spooling input to a temporary file"), "%s", r.notes);
        json_decref(r.result);
        t_compare(in->qfmt, ip, cases[i].ofmt, pp);
        t_check(cases[i].ofmt, pp);
    }
}

/* --framed: the planned output in frames (its size known up front), read back by a second
 * fluid-image. */
Test(image_pipe_out, framed_planned_output, .init = setup, .fini = t_teardown)
{
    char ip[PATH_MAX], nodir[PATH_MAX], fr[PATH_MAX], back[PATH_MAX];
    make_input(&inputs[4], ip, sizeof ip);
    t_path(nodir, sizeof nodir, "no-such-folder");
    t_path(fr, sizeof fr, "frames");
    t_path(back, sizeof back, "back.raw");
    static const char *const fmts[] = {"qcow2", "vpc", "vmdk"};
    for (size_t i = 0; i < 3; i++) {
        const char *args[] = {"convert", "--tmpdir", nodir, "--framed", "-O", fmts[i], ip, "-",
                              NULL};
        struct run r;
        run_piped(&r, args, NULL, false, fr);
        assert_planned(&r, fmts[i]);
        json_decref(r.result);
        char head[8] = {0};
        FILE *f = fopen(fr, "rb");
        cr_assert(f && fread(head, 1, 8, f) == 8);
        fclose(f);
        cr_assert(memcmp(head, "FCSTRM01", 8) == 0, "no framed stream preamble");
        const char *a[] = {t_fluid, "convert", "-O", "raw", "-", "-", NULL};
        cr_assert_eq(t_pipeline(fr, a, back), 0, "reading the framed %s back", fmts[i]);
        t_compare("vmdk", ip, "raw", back);
    }
}

/* A 64 GiB sparse disk with a little data: the map is 1 bit per cluster, grain or block,
 * so peak RSS stays under 64 MiB (getrusage of the child, under the sanitizers too). */
Test(image_pipe_out, large_sparse_bounded_rss, .init = setup, .fini = t_teardown)
{
    char big[PATH_MAX], nodir[PATH_MAX], pp[PATH_MAX];
    t_path(big, sizeof big, "big.raw");
    t_path(nodir, sizeof nodir, "no-such-folder");
    t_path(pp, sizeof pp, "big.out");
    int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, 64ll << 30), 0, "a sparse 64 GiB file: %s", strerror(errno));
    static uint8_t buf[3 << 20];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 2654435761u >> 13 | 1);
    static const long long at[] = {0, 1ll << 30, 17ll << 30, (40ll << 30) + 12345,
                                   (64ll << 30) - 70000};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        size_t n = at[i] + (long long)sizeof buf > (64ll << 30) ? (size_t)((64ll << 30) - at[i])
                                                                 : sizeof buf;
        cr_assert_eq(pwrite(fd, buf, n, at[i]), (ssize_t)n);
    }
    close(fd);
    static const char *const fmts[] = {"qcow2", "vpc", "vmdk"};
    for (size_t i = 0; i < 3; i++) {
        const char *args[] = {"convert", "--tmpdir", nodir, "-O", fmts[i], big, "-", NULL};
        struct run r;
        run_piped(&r, args, NULL, false, pp);
        assert_planned(&r, fmts[i]);
        cr_assert_eq(json_integer_value(json_object_get(r.result, "virtual_size")), 64ll << 30);
        json_decref(r.result);
        cr_assert_lt(r.ru.ru_maxrss, 64 * 1024, "%s: peak RSS %ld KiB", fmts[i], r.ru.ru_maxrss);
        t_compare("raw", big, fmts[i], pp);
        t_check(fmts[i], pp);
        struct stat st;
        cr_assert_eq(stat(pp, &st), 0);
        cr_assert_lt(st.st_size, 64ll << 20, "%s: the output holds only the data (%lld bytes)",
                     fmts[i], (long long)st.st_size);
        unlink(pp);
    }
    unlink(big);
}

/* 512-byte clusters on a 1 GiB disk: the L1 table spans several refcount blocks' ranges (the
 * blocks it fills go after it), and data sits in many; planned, compressed and file outputs
 * all check clean. */
Test(image_pipe_out, small_clusters_large_disk, .init = setup, .fini = t_teardown)
{
    char src[PATH_MAX], pp[PATH_MAX], fp[PATH_MAX], cp[PATH_MAX];
    t_path(src, sizeof src, "1g.raw");
    t_path(pp, sizeof pp, "1g-pipe.qcow2");
    t_path(fp, sizeof fp, "1g-file.qcow2");
    t_path(cp, sizeof cp, "1g-c.qcow2");
    T_RUN_OK(t_qemu_img, "create", "-q", "-f", "raw", src, "1G");
    T_RUN_OK(t_qemu_io, "-f", "raw", "-c", "write -P 0x33 1M 3M", "-c", "write -P 0x44 700M 1M",
             "-c", "write -P 0x55 1023M 65k", src);
    const char *args[] = {"convert", "-O", "qcow2", "-o", "cluster_size=512", src, "-", NULL};
    struct run r;
    run_piped(&r, args, NULL, false, pp);
    assert_planned(&r, "1 GiB at 512-byte clusters");
    json_decref(r.result);
    t_compare("raw", src, "qcow2", pp);
    t_check("qcow2", pp);
    T_RUN_OK(t_fluid, "convert", "-O", "qcow2", "-o", "cluster_size=512", src, fp);
    assert_same_bytes("qcow2", pp, fp, "1 GiB at 512-byte clusters");
    T_RUN_OK(t_fluid, "convert", "-c", "-O", "qcow2", "-o", "cluster_size=512", src, cp);
    t_compare("raw", src, "qcow2", cp);
    t_check("qcow2", cp);
}
