/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-image against the real qemu-img: every supported input format (made by qemu-img)
 * converted to every output format, with and without compression; qemu-img compare says
 * identical and qemu-img check finds no error. Pipes in and out give the same result as
 * files; the framed stream carries images between two fluid-image processes; events,
 * info, and the qemu-img fallback. */
#include <jansson.h>

#include "imgtest.h"

struct fmt {
    const char *name;      /* file name suffix */
    const char *qfmt;      /* qemu-img format */
    const char *opts;      /* -o for the converter, or NULL */
    bool compress;
};

static const struct fmt inputs[] = {
    {"raw", "raw", NULL, false},
    {"v3.qcow2", "qcow2", "compat=1.1", false},
    {"v2.qcow2", "qcow2", "compat=0.10", false},
    {"c.qcow2", "qcow2", NULL, true},
    {"sparse.vmdk", "vmdk", "subformat=monolithicSparse", false},
    {"stream.vmdk", "vmdk", "subformat=streamOptimized", false},
    {"dyn.vhd", "vpc", "subformat=dynamic", false},
    {"fixed.vhd", "vpc", "subformat=fixed", false},
    {"v3z.qcow2", "qcow2", "compat=1.1", false}, /* with zero clusters, see make_input */
};

static const struct fmt outputs[] = {
    {"raw", "raw", NULL, false},
    {"qcow2", "qcow2", NULL, false},
    {"c.qcow2", "qcow2", NULL, true},
    {"v2-4k.qcow2", "qcow2", "compat=0.10,cluster_size=4096", false},
    {"c-v2-512.qcow2", "qcow2", "compat=0.10,cluster_size=512", true},
    {"sparse.vmdk", "vmdk", NULL, false},
    {"stream.vmdk", "vmdk", "subformat=streamOptimized", true},
    {"dyn.vhd", "vpc", NULL, false},
    {"fixed.vhd", "vpc", "subformat=fixed", false},
};

static void setup(void) { t_setup("convert"); }

/* Makes src.raw and the input image i (with qemu-img); returns its path in p. */
static void
make_input(const struct fmt *in, char *p, size_t n)
{
    char src[PATH_MAX];
    t_path(src, sizeof src, "src.raw");
    if (!t_exists(src))
        t_make_source(src);
    if (strcmp(in->name, "raw") == 0) {
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
    if (strcmp(in->name, "v3z.qcow2") == 0) {
        /* v3 zero clusters, allocated (-z) and unmapped (-z -u), over data */
        T_RUN_OK(t_qemu_io, "-f", "qcow2", "-c", "write -z 4M 128k", "-c",
                 "write -z -u 1M 64k", p);
        return;
    }
    t_compare("raw", src, in->qfmt, p);
}

static void
convert_all(const struct fmt *in)
{
    char ip[PATH_MAX];
    make_input(in, ip, sizeof ip);
    for (size_t o = 0; o < sizeof outputs / sizeof outputs[0]; o++) {
        const struct fmt *out = &outputs[o];
        char name[128], op[PATH_MAX];
        snprintf(name, sizeof name, "out-%s-to-%s", in->name, out->name);
        t_path(op, sizeof op, name);
        const char *argv[16];
        int k = 0;
        argv[k++] = t_fluid;
        argv[k++] = "convert";
        argv[k++] = "-f";
        argv[k++] = in->qfmt;
        argv[k++] = "-O";
        argv[k++] = out->qfmt;
        if (out->opts)
            argv[k++] = "-o", argv[k++] = out->opts;
        if (out->compress)
            argv[k++] = "-c";
        argv[k++] = ip;
        argv[k++] = op;
        argv[k] = NULL;
        int s = t_run(argv);
        cr_assert_eq(s, 0, "%s -> %s: status %d: %s", in->name, out->name, s, t_err);
        t_compare(in->qfmt, ip, out->qfmt, op);
        t_check(out->qfmt, op);
        unlink(op);
    }
    t_no_temp("out-");
}

Test(image_convert, from_raw, .init = setup, .fini = t_teardown) { convert_all(&inputs[0]); }
Test(image_convert, from_qcow2_v3, .init = setup, .fini = t_teardown) { convert_all(&inputs[1]); }
Test(image_convert, from_qcow2_v2, .init = setup, .fini = t_teardown) { convert_all(&inputs[2]); }
Test(image_convert, from_qcow2_compressed, .init = setup, .fini = t_teardown)
{
    convert_all(&inputs[3]);
}
Test(image_convert, from_vmdk_sparse, .init = setup, .fini = t_teardown) { convert_all(&inputs[4]); }
Test(image_convert, from_vmdk_stream, .init = setup, .fini = t_teardown) { convert_all(&inputs[5]); }
Test(image_convert, from_vpc_dynamic, .init = setup, .fini = t_teardown) { convert_all(&inputs[6]); }
Test(image_convert, from_vpc_fixed, .init = setup, .fini = t_teardown) { convert_all(&inputs[7]); }
Test(image_convert, from_qcow2_zero_clusters, .init = setup, .fini = t_teardown)
{
    convert_all(&inputs[8]);
}

/* What fluid-image writes, fluid-image reads back (e.g. its streamOptimized VMDK with the
 * grain directory at the end, which qemu-img does not write). */
Test(image_convert, own_outputs_read_back, .init = setup, .fini = t_teardown)
{
    char ip[PATH_MAX], op[PATH_MAX], back[PATH_MAX];
    make_input(&inputs[0], ip, sizeof ip);
    t_path(back, sizeof back, "back.raw");
    for (size_t o = 1; o < sizeof outputs / sizeof outputs[0]; o++) {
        t_path(op, sizeof op, outputs[o].name);
        const char *opts = outputs[o].opts ? outputs[o].opts : "";
        const char *a[] = {t_fluid, "convert", "-O", outputs[o].qfmt, "-o", opts,
                           outputs[o].compress ? "-c" : "-p", ip, op, NULL};
        int s = t_run(a);
        cr_assert_eq(s, 0, "write %s: %d %s", outputs[o].name, s, t_err);
        const char *b[] = {t_fluid, "convert", "-f", outputs[o].qfmt, "-O", "raw", op, back,
                           NULL};
        s = t_run(b);
        cr_assert_eq(s, 0, "read back %s: %d %s", outputs[o].name, s, t_err);
        t_compare("raw", ip, "raw", back);
    }
}

static bool
same_bytes(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    cr_assert(fa && fb);
    int ca, cb;
    do {
        ca = getc(fa);
        cb = getc(fb);
    } while (ca == cb && ca != EOF);
    fclose(fa);
    fclose(fb);
    return ca == cb;
}

/* Pipe in and pipe out give what files give. */
Test(image_convert, pipes_equal_files, .init = setup, .fini = t_teardown)
{
    static const struct {
        int in;                    /* index in inputs */
        const char *ofmt, *oopts;
        bool bytes;                /* byte-identical to the file result (deterministic) */
    } cases[] = {
        {0, "raw", NULL, true},
        {1, "raw", NULL, true},
        {3, "qcow2", NULL, true},
        {0, "qcow2", NULL, true},
        {5, "vmdk", "subformat=streamOptimized", false},
        {4, "raw", NULL, true},
        {0, "vpc", "subformat=fixed", false},
        {6, "vpc", NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct fmt *in = &inputs[cases[i].in];
        char ip[PATH_MAX], fp[PATH_MAX], pp[PATH_MAX];
        make_input(in, ip, sizeof ip);
        t_path(fp, sizeof fp, "file.out");
        t_path(pp, sizeof pp, "pipe.out");
        const char *o = cases[i].oopts ? cases[i].oopts : "";
        const char *fa[] = {t_fluid, "convert", "-O", cases[i].ofmt, "-o", o, ip, fp, NULL};
        const char *pa[] = {t_fluid, "convert", "-O", cases[i].ofmt, "-o", o, "-", "-", NULL};
        int s = t_run(fa);
        cr_assert_eq(s, 0, "file %s -> %s: %d %s", in->name, cases[i].ofmt, s, t_err);
        s = t_pipeline(ip, pa, pp);
        cr_assert_eq(s, 0, "pipe %s -> %s: status %d", in->name, cases[i].ofmt, s);
        t_compare(in->qfmt, ip, cases[i].ofmt, pp);
        t_compare(cases[i].ofmt, fp, cases[i].ofmt, pp);
        t_check(cases[i].ofmt, pp);
        if (cases[i].bytes)
            cr_assert(same_bytes(fp, pp), "%s -> %s: pipe output differs from file output",
                      in->name, cases[i].ofmt);
    }
}

/* Two fluid-image processes joined by the framed stream, for raw content and for an image
 * file carried in frames. */
Test(image_convert, framed_stream, .init = setup, .fini = t_teardown)
{
    char ip[PATH_MAX], src[PATH_MAX], fr[PATH_MAX], out[PATH_MAX];
    make_input(&inputs[1], ip, sizeof ip);
    t_path(src, sizeof src, "src.raw");
    t_path(fr, sizeof fr, "frames");
    t_path(out, sizeof out, "framed.vmdk");
    const char *a1[] = {t_fluid, "convert", "-O", "raw", "--framed", "-", "-", NULL};
    cr_assert_eq(t_pipeline(ip, a1, fr), 0);
    char head[8] = {0};
    FILE *f = fopen(fr, "rb");
    cr_assert(f && fread(head, 1, 8, f) == 8);
    fclose(f);
    cr_assert(memcmp(head, "FCSTRM01", 8) == 0, "no framed stream preamble");
    const char *a2[] = {t_fluid, "convert", "-O", "vmdk", "-o", "subformat=streamOptimized",
                        "-", "-", NULL};
    cr_assert_eq(t_pipeline(fr, a2, out), 0);
    t_compare("raw", src, "vmdk", out);
    /* our streamOptimized (directory at the end) read back from a pipe, marker by marker */
    char back[PATH_MAX];
    t_path(back, sizeof back, "framed-back.raw");
    const char *a5[] = {t_fluid, "convert", "-O", "raw", "-", "-", NULL};
    cr_assert_eq(t_pipeline(out, a5, back), 0);
    t_compare("raw", src, "raw", back);
    /* a qcow2 file carried in frames */
    const char *a3[] = {t_fluid, "convert", "-O", "qcow2", "--framed", "-", "-", NULL};
    cr_assert_eq(t_pipeline(src, a3, fr), 0);
    const char *a4[] = {t_fluid, "convert", "-O", "raw", "-", "-", NULL};
    cr_assert_eq(t_pipeline(fr, a4, out), 0);
    t_compare("raw", src, "raw", out);
}

/* Under a broker: progress and a done event with sizes on the events descriptor. */
Test(image_convert, migrator_events, .init = setup, .fini = t_teardown)
{
    char ip[PATH_MAX], out[PATH_MAX];
    make_input(&inputs[3], ip, sizeof ip);
    t_path(out, sizeof out, "ev.vhd");
    int ev[2];
    cr_assert_eq(pipe2(ev, O_CLOEXEC), 0);
    const char *argv[] = {t_fluid, "--events-fd", "3", "convert", "-O", "vpc", ip, out, NULL};
    struct fc_spawn sp = {.argv = argv, .fd = {-1, -1, -1}, .pass = &ev[1], .npass = 1};
    pid_t pid;
    cr_assert_eq(fc_spawn(&sp, &pid), FC_OK);
    close(ev[1]);
    static char buf[1 << 16];
    size_t len = 0;
    ssize_t r;
    while ((r = read(ev[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)r;
    close(ev[0]);
    buf[len] = '\0';
    cr_assert_eq(t_wait(pid), 0, "events: %s", buf);
    int progress = 0;
    json_t *done = NULL;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *e = json_loads(line, 0, NULL);
        cr_assert_not_null(e, "event is not JSON: %s", line);
        const char *kind = json_string_value(json_object_get(e, "event"));
        if (kind && strcmp(kind, "progress") == 0) {
            progress++;
            cr_assert(json_is_integer(json_object_get(e, "zero_bytes")));
            cr_assert(json_is_integer(json_object_get(e, "bytes_in")));
            json_decref(e);
        } else if (kind && strcmp(kind, "done") == 0) {
            done = e;
        } else {
            json_decref(e);
        }
    }
    cr_assert_geq(progress, 2);
    cr_assert_not_null(done, "no done event");
    json_t *res = json_object_get(done, "result");
    cr_assert_eq(json_integer_value(json_object_get(res, "virtual_size")), SRC_SIZE);
    cr_assert_str_eq(json_string_value(json_object_get(res, "source_format")), "qcow2");
    cr_assert_str_eq(json_string_value(json_object_get(res, "format")), "vpc");
    cr_assert_gt(json_integer_value(json_object_get(res, "zero_bytes")), 0);
    cr_assert_gt(json_integer_value(json_object_get(res, "bytes_written")), 0);
    json_decref(done);
    t_compare("qcow2", ip, "vpc", out);
}

Test(image_convert, info_json, .init = setup, .fini = t_teardown)
{
    for (size_t i = 1; i < sizeof inputs / sizeof inputs[0]; i++) {
        char ip[PATH_MAX];
        make_input(&inputs[i], ip, sizeof ip);
        static char out[1 << 14];
        const char *argv[] = {t_fluid, "info", "--json", ip, NULL};
        int st;
        cr_assert_eq(fc_run(argv, out, sizeof out, t_err, sizeof t_err, &st), FC_OK);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "info %s: %s", ip, t_err);
        json_t *o = json_loads(out, 0, NULL);
        cr_assert_not_null(o, "info --json is not JSON: %s", out);
        cr_assert_str_eq(json_string_value(json_object_get(o, "format")), inputs[i].qfmt);
        /* the size qemu-img reports */
        static char q[1 << 14];
        const char *qa[] = {t_qemu_img, "info", "--output=json", "-f", inputs[i].qfmt, ip, NULL};
        cr_assert_eq(fc_run(qa, q, sizeof q, NULL, 0, &st), FC_OK);
        json_t *qo = json_loads(q, 0, NULL);
        cr_assert_not_null(qo);
        cr_assert_eq(json_integer_value(json_object_get(o, "virtual-size")),
                     json_integer_value(json_object_get(qo, "virtual-size")), "size of %s",
                     inputs[i].name);
        json_decref(o);
        json_decref(qo);
    }
}

/* Formats we do not handle go to qemu-img; without qemu-img, a clear error. */
Test(image_convert, qemu_img_fallback, .init = setup, .fini = t_teardown)
{
    char ip[PATH_MAX], out[PATH_MAX], back[PATH_MAX];
    make_input(&inputs[1], ip, sizeof ip);
    t_path(out, sizeof out, "fb.vdi");
    t_path(back, sizeof back, "fb.qcow2");
    T_RUN_OK(t_fluid, "convert", "-O", "vdi", ip, out);
    t_compare("qcow2", ip, "vdi", out);
    T_RUN_OK(t_fluid, "convert", "-O", "qcow2", out, back); /* vdi detected, read by qemu-img */
    t_compare("qcow2", ip, "qcow2", back);
    char empty[PATH_MAX + 8];
    snprintf(empty, sizeof empty, "PATH=%s", t_dir);
    const char *env[] = {empty, "FLUID_LOG_FORMAT=text", "ASAN_OPTIONS=exitcode=86", NULL};
    const char *argv[] = {t_fluid, "convert", "-O", "vhdx", ip, out, NULL};
    int ep[2];
    cr_assert_eq(pipe2(ep, O_CLOEXEC), 0);
    struct fc_spawn sp = {.argv = argv, .env = env, .fd = {-1, -1, ep[1]}};
    pid_t pid;
    cr_assert_eq(fc_spawn(&sp, &pid), FC_OK);
    close(ep[1]);
    ssize_t n = read(ep[0], t_err, sizeof t_err - 1);
    t_err[n > 0 ? n : 0] = '\0';
    close(ep[0]);
    cr_assert_eq(t_wait(pid), 2, "exit status for an unsupported format: %s", t_err);
    cr_assert(strstr(t_err, "raw, qcow2, vmdk, vpc"), "the error lists the formats: %s", t_err);
}

/* A qcow2 overlay is read with its backing file only when --backing names it. */
Test(image_convert, backing_file, .init = setup, .fini = t_teardown)
{
    char src[PATH_MAX], base[PATH_MAX], ov[PATH_MAX], out[PATH_MAX];
    make_input(&inputs[3], base, sizeof base); /* compressed qcow2 as the base */
    t_path(src, sizeof src, "src.raw");
    t_path(ov, sizeof ov, "overlay.qcow2");
    t_path(out, sizeof out, "flat.qcow2");
    T_RUN_OK(t_qemu_img, "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", ov);
    T_RUN_OK(t_qemu_io, "-f", "qcow2", "-c", "write -P 0x99 1M 100k", "-c", "write -z 4M 64k",
             ov);
    const char *refuse[] = {t_fluid, "convert", "-O", "qcow2", ov, out, NULL};
    cr_assert_eq(t_run(refuse), 2, "an overlay without --backing is refused: %s", t_err);
    cr_assert(strstr(t_err, "--backing"), "%s", t_err);
    cr_assert(!t_exists(out));
    T_RUN_OK(t_fluid, "convert", "--backing", base, "-O", "qcow2", ov, out);
    t_compare("qcow2", ov, "qcow2", out);
    t_check("qcow2", out);
    /* a raw base */
    T_RUN_OK(t_qemu_img, "create", "-q", "-f", "qcow2", "-b", src, "-F", "raw", ov);
    T_RUN_OK(t_qemu_io, "-f", "qcow2", "-c", "write -P 0x98 3M 100k", ov);
    T_RUN_OK(t_fluid, "convert", "--backing", src, "-O", "vpc", ov, out);
    t_compare("qcow2", ov, "vpc", out);
}

/* SIGTERM (the broker's cancel) ends the run with FC_E_CANCELLED and removes the temporary
 * output. The input is a pipe this test feeds, so the signal arrives mid-conversion whatever
 * the machine's speed. */
Test(image_convert, cancel_removes_temp, .init = setup, .fini = t_teardown)
{
    char out[PATH_MAX];
    t_path(out, sizeof out, "cancel.raw");
    signal(SIGPIPE, SIG_IGN); /* fluid-image stops reading once cancelled */
    int in[2];
    cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
    const char *argv[] = {t_fluid, "convert", "-f", "raw", "-O", "raw", "-", out, NULL};
    struct fc_spawn sp = {.argv = argv, .fd = {in[0], -1, -1}};
    pid_t pid;
    cr_assert_eq(fc_spawn(&sp, &pid), FC_OK);
    close(in[0]);
    static char buf[1 << 20];
    memset(buf, 0x5a, sizeof buf);
    cr_assert_eq(write(in[1], buf, sizeof buf), (ssize_t)sizeof buf);
    /* the temporary output exists once the conversion has started */
    bool seen = false;
    while (!seen) {
        DIR *d = opendir(t_dir);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL)
            seen |= strncmp(e->d_name, "cancel.raw.tmp-", 15) == 0;
        if (d)
            closedir(d);
        if (!seen)
            usleep(10000);
    }
    cr_assert_eq(kill(pid, SIGTERM), 0);
    for (int i = 0; i < 6; i++)
        if (write(in[1], buf, sizeof buf) < 0)
            break; /* it may already have stopped reading */
    close(in[1]);
    cr_assert_eq(t_wait(pid), 14, "exit status FC_E_CANCELLED");
    cr_assert(!t_exists(out));
    t_no_temp("cancel.raw");
}
