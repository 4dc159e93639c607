/* SPDX-License-Identifier: Apache-2.0 */
/* The conversion core of fluid-image: picks the reader and writer, spools pipes that a
 * format cannot stream, plans an output that needs seeks but goes to a pipe (plan.h) or else
 * spools it, joins reader and writer through a counting sink (progress and event
 * statistics), writes to a temporary name and renames it on success, and hands formats it
 * does not know to qemu-img. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "convert.h"
#include "plan.h"
#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/spawn.h"

struct conv {
    const struct img_convert_opts *o;
    struct img_in in;
    struct img_out out;
    struct fc_sink sink;     /* counting sink: first-level wrapper of the writer */
    struct fc_sink *next;
    uint64_t vsize, done, zero_bytes, data_bytes;
    uint64_t last_tty_ns;
    const char *tmpdir;
    /* the output, set up by open_output once the reader is known */
    const struct img_writer *wd;
    void *wst;
    int final_fd, wfd;
    bool seeks;             /* the writer writes back into its output */
    bool pipe_out;          /* ...or needs the size first, and the output is a pipe */
    bool out_ready, spool_out, planned;
    struct img_map map;     /* planned output: the units of the disk holding data */
    uint64_t plan_size, map_bytes_read;
    struct fc_stream_writer fw; /* the framed stream on stdout (--framed) */
    bool fw_on, fw_begun;
    struct img_fsink fs;    /* frames a planned output */
};

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
note(struct conv *c, const char *what, const char *detail)
{
    fc_log(FC_INFO, FC_MSG(what), FC_STR("detail", detail));
    if (c->o->m)
        fc_event_info(c->o->m, json_pack("{s:s,s:s}", "note", what, "detail", detail));
}

static void
report(struct conv *c, bool force)
{
    if (c->o->m)
        fc_event_progress(c->o->m, c->done, c->vsize,
                          json_pack("{s:I,s:I,s:I}", "bytes_in", (json_int_t)c->in.bytes_read,
                                    "bytes_out", (json_int_t)c->out.bytes_written,
                                    "zero_bytes", (json_int_t)c->zero_bytes),
                          force);
    if (c->o->progress) {
        uint64_t t = now_ns();
        if (force || t - c->last_tty_ns > 100000000u) {
            c->last_tty_ns = t;
            double pct = c->vsize && c->vsize != FC_SIZE_UNKNOWN
                             ? 100.0 * (double)c->done / (double)c->vsize
                             : 0.0;
            fprintf(stderr, "    (%.2f/100%%)\r", pct);
            if (force)
                fputc('\n', stderr);
            fflush(stderr);
        }
    }
}

static fc_rc
c_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct conv *c = (struct conv *)((char *)s - offsetof(struct conv, sink));
    c->vsize = info->size;
    report(c, true);
    return c->next->begin(c->next, info);
}

static fc_rc
c_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct conv *c = (struct conv *)((char *)s - offsetof(struct conv, sink));
    if (off != c->done)
        return FC_ERR(FC_E_INTERNAL, "reader wrote at %llu, expected %llu",
                      (unsigned long long)off, (unsigned long long)c->done);
    if (fc_cancel_requested)
        return FC_ERR(FC_E_CANCELLED, "cancelled at offset %llu", (unsigned long long)off);
    c->done += len;
    c->data_bytes += len;
    fc_rc rc = c->next->write(c->next, off, buf, len);
    report(c, false);
    return rc;
}

static fc_rc
c_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    struct conv *c = (struct conv *)((char *)s - offsetof(struct conv, sink));
    if (off != c->done)
        return FC_ERR(FC_E_INTERNAL, "reader skipped to %llu, expected %llu",
                      (unsigned long long)off, (unsigned long long)c->done);
    c->done += len;
    c->zero_bytes += len;
    return c->next->zero(c->next, off, len);
}

static fc_rc
c_end(struct fc_sink *s, uint64_t size, const uint8_t *sha256)
{
    struct conv *c = (struct conv *)((char *)s - offsetof(struct conv, sink));
    if (c->vsize == FC_SIZE_UNKNOWN)
        c->vsize = size;
    fc_rc rc = c->next->end(c->next, size, sha256);
    if (rc == FC_OK)
        report(c, true);
    return rc;
}

/* ---- framed output: split data into zero runs, and label the format ---- */
struct split {
    struct fc_sink sink; /* first */
    struct fc_sink *next;
    const char *format;
};

static fc_rc
sp_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct split *p = (struct split *)s;
    struct fc_stream_info i = *info;
    if (p->format)
        snprintf(i.format, sizeof i.format, "%s", p->format);
    return p->next->begin(p->next, &i);
}

static fc_rc
sp_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct split *p = (struct split *)s;
    const uint8_t *b = buf;
    const size_t zb = 65536;
    size_t i = 0;
    fc_rc rc = FC_OK;
    while (i < len && rc == FC_OK) {
        size_t k = len - i < zb ? len - i : zb;
        bool z = fc_is_zero(b + i, k);
        size_t j = i + k;
        while (j < len) {
            size_t kk = len - j < zb ? len - j : zb;
            if (fc_is_zero(b + j, kk) != z)
                break;
            j += kk;
        }
        rc = z ? p->next->zero(p->next, off + i, j - i)
               : p->next->write(p->next, off + i, b + i, j - i);
        i = j;
    }
    return rc;
}

static fc_rc
sp_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    struct split *p = (struct split *)s;
    return p->next->zero(p->next, off, len);
}

static fc_rc
sp_end(struct fc_sink *s, uint64_t size, const uint8_t *sha)
{
    struct split *p = (struct split *)s;
    return p->next->end(p->next, size, sha);
}

/* Copies a finished spool file to stdout, framed (with the format's name) or plain. */
static fc_rc
copy_spool(int fd, int outfd, bool framed, const char *format)
{
    if (lseek(fd, 0, SEEK_SET) < 0)
        return FC_ERRNO(FC_E_IO, "rewind the output spool");
    struct fc_stream_writer w;
    fc_stream_writer_init(&w, outfd, framed);
    struct split sp = {{sp_begin, sp_write, sp_zero, sp_end}, &w.sink, format};
    struct fc_stream_reader_opts ro = {.verify = false, .hash_plain = framed,
                                       .cancel = &fc_cancel_requested};
    fc_rc rc = fc_stream_read(fd, &sp.sink, &ro, NULL);
    fc_stream_writer_fini(&w);
    return rc;
}

/* The mapping pass of a planned output: progress with no content done yet (done 0, the
 * input read so far in bytes_in, "phase":"mapping"), and "mapping" on a terminal. */
static void
map_progress(void *arg, uint64_t pos)
{
    struct conv *c = arg;
    uint64_t t = now_ns();
    if (t - c->last_tty_ns < 250000000u)
        return;
    c->last_tty_ns = t;
    if (c->o->m)
        fc_event_progress(c->o->m, 0, c->vsize,
                          json_pack("{s:I,s:I,s:I,s:s}", "bytes_in", (json_int_t)c->in.bytes_read,
                                    "bytes_out", (json_int_t)0, "zero_bytes", (json_int_t)0,
                                    "phase", "mapping"),
                          true);
    if (c->o->progress && c->vsize) {
        fprintf(stderr, "    (mapping %.2f/100%%)\r", 100.0 * (double)pos / (double)c->vsize);
        fflush(stderr);
    }
}

/* ---- the output ---- */
/* Sets the writer up once the reader is known (rd and rst NULL: raw frames, read once). An
 * output that needs seeks but goes to a pipe is planned from a map of a seekable input and
 * written in offset order; otherwise it is assembled in a spool file, copied out at the end. */
static fc_rc
open_output(struct conv *c, const struct img_reader *rd, void *rst, uint64_t vsize)
{
    const struct img_convert_opts *o = c->o;
    if (c->out_ready)
        return FC_OK;
    c->out_ready = true;
    const char *slash = strrchr(o->dst, '/');
    struct img_wopts wo = {.compress = o->compress, .threads = o->threads,
                           .dst_name = strcmp(o->dst, "-") == 0 ? "disk.vmdk"
                                       : slash                  ? slash + 1
                                                                : o->dst};
    fc_rc rc = c->wd->open(c->wst, &c->out, &wo, &c->next);
    if (rc != FC_OK)
        return rc;
    c->wfd = c->final_fd;
    if (!c->pipe_out)
        return img_out_init(&c->out, c->wfd);
    uint64_t unit = c->seeks && c->wd->plan_unit ? c->wd->plan_unit(c->wst, vsize) : 0;
    const char *why = NULL;
    if (!c->seeks)
        why = "a framed stream needs the output's size first";
    else if (unit == 0)
        why = o->compress ? "compressed clusters have sizes known only once compressed, so "
                            "the metadata cannot be planned"
                          : "the output format writes its metadata last";
    else if (!rd || !c->in.seekable || vsize == FC_SIZE_UNKNOWN)
        why = "the input is read once, in order, so its data cannot be mapped first";
    else if (img_map_bytes(vsize, unit) > IMG_MAP_MAX_BYTES)
        why = "the map of this virtual size at this cluster size would pass 32 MiB";
    if (why) {
        char path[4096];
        snprintf(path, sizeof path, "%s/fluid-image-out-XXXXXX", c->tmpdir);
        c->wfd = mkostemp(path, O_CLOEXEC);
        if (c->wfd < 0)
            return FC_ERRNO(FC_E_IO, "create a spool file in %s", c->tmpdir);
        unlink(path);
        c->spool_out = true;
        note(c, "spooling output to a temporary file", why);
        return img_out_init(&c->out, c->wfd);
    }
    /* planned: map the input's data, lay the output out, write it in offset order */
    uint64_t before = c->in.bytes_read;
    struct img_map_progress mp = {map_progress, c};
    c->vsize = vsize;
    rc = img_map_input(rd, rst, &c->in, unit, vsize, &fc_cancel_requested, &mp, &c->map);
    c->map_bytes_read = c->in.bytes_read - before;
    if (rc == FC_OK)
        rc = c->wd->plan(c->wst, &c->map, vsize, &c->plan_size);
    if (rc != FC_OK)
        return rc;
    c->planned = true;
    char d[320];
    snprintf(d, sizeof d, "%s: %llu of %llu units of %llu bytes hold data; metadata laid out "
             "first, %llu bytes written in offset order, no temporary file", c->wd->name,
             (unsigned long long)c->map.count, (unsigned long long)c->map.n,
             (unsigned long long)unit, (unsigned long long)c->plan_size);
    note(c, "planned streaming output", d);
    if (!o->framed_out)
        return img_out_init(&c->out, c->final_fd);
    fc_stream_writer_init(&c->fw, c->final_fd, true);
    c->fw_on = true;
    rc = img_fsink_begin(&c->fs, &c->fw.sink, c->plan_size, c->wd->name);
    c->fw_begun = true;
    return rc != FC_OK ? rc : img_out_init_sink(&c->out, &c->fs.sink);
}

/* After the writer's end(): the planned output had exactly its planned size. */
static fc_rc
end_planned(struct conv *c)
{
    if (c->out.pos != c->plan_size)
        return FC_ERR(FC_E_INTERNAL, "%s: wrote %llu bytes, planned %llu", c->wd->name,
                      (unsigned long long)c->out.pos, (unsigned long long)c->plan_size);
    return c->o->framed_out ? img_fsink_end(&c->fs) : FC_OK;
}

/* ---- framed input: frames carry the content; frames carrying a file get spooled ---- */
struct reinject {
    int in, out;
    uint8_t head[IMG_HEAD_MAX];
    size_t head_len;
};

static void *
reinject_main(void *arg)
{
    struct reinject *r = arg;
    fc_rc rc = fc_write_all(r->out, r->head, r->head_len);
    char buf[1 << 16];
    while (rc == FC_OK) {
        ssize_t n = splice(r->in, NULL, r->out, NULL, 1 << 20, SPLICE_F_MOVE);
        if (n < 0 && errno == EINVAL) {
            n = read(r->in, buf, sizeof buf);
            if (n > 0)
                rc = fc_write_all(r->out, buf, (size_t)n);
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
    }
    close(r->out);
    close(r->in);
    free(r);
    return NULL;
}

/* fc_stream_read on the input, whose first bytes were already read into in->head. */
static fc_rc
read_framed(struct conv *c, struct fc_sink *sink)
{
    struct fc_stream_reader_opts ro = {.verify = true, .cancel = &fc_cancel_requested};
    if (c->in.seekable) {
        if (lseek(c->in.fd, 0, SEEK_SET) < 0)
            return FC_ERRNO(FC_E_IO, "%s: seek", c->in.name);
        return fc_stream_read(c->in.fd, sink, &ro, NULL);
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return FC_ERRNO(FC_E_IO, "pipe");
    struct reinject *r = malloc(sizeof *r);
    int in = dup(c->in.fd);
    if (!r || in < 0) {
        free(r);
        close(p[0]);
        close(p[1]);
        return FC_ERRNO(FC_E_IO, "framed input");
    }
    r->in = in;
    r->out = p[1];
    memcpy(r->head, c->in.head, c->in.head_len);
    r->head_len = c->in.head_len;
    pthread_t t;
    if (pthread_create(&t, NULL, reinject_main, r) != 0) {
        close(p[0]);
        close(p[1]);
        close(in);
        free(r);
        return FC_ERR(FC_E_NOMEM, "cannot start a thread");
    }
    fc_rc rc = fc_stream_read(p[0], sink, &ro, NULL);
    close(p[0]); /* a thread still copying gets EPIPE */
    if (rc == FC_OK)
        pthread_join(t, NULL); /* END was followed by EOF: the thread is done */
    else
        pthread_detach(t);
    return rc;
}

/* The framed BEGIN says what the frames carry: a disk's content ("raw") goes on to the
 * writer; a file in another format is spooled, then read by its reader. */
struct fdisp {
    struct fc_sink sink; /* first */
    struct conv *c;
    struct fc_sink *target;
    struct fc_stream_writer spool;
    int spool_fd;
    char format[32];
};

static fc_rc
fd_begin(struct fc_sink *s, const struct fc_stream_info *info)
{
    struct fdisp *d = (struct fdisp *)s;
    const char *f = d->c->o->src_fmt ? d->c->o->src_fmt : info->format[0] ? info->format : "raw";
    snprintf(d->format, sizeof d->format, "%s", f);
    if (strcmp(d->format, "raw") == 0) {
        fc_rc rc = open_output(d->c, NULL, NULL, info->size);
        if (rc != FC_OK)
            return rc;
        d->target = &d->c->sink;
    } else {
        char path[4096];
        snprintf(path, sizeof path, "%s/fluid-image-spool-XXXXXX", d->c->tmpdir);
        d->spool_fd = mkostemp(path, O_CLOEXEC);
        if (d->spool_fd < 0)
            return FC_ERRNO(FC_E_IO, "create a spool file in %s", d->c->tmpdir);
        unlink(path);
        note(d->c, "spooling framed input to a temporary file", d->format);
        fc_stream_writer_init(&d->spool, d->spool_fd, false);
        d->target = &d->spool.sink;
    }
    return d->target->begin(d->target, info);
}

static fc_rc
fd_write(struct fc_sink *s, uint64_t off, const void *buf, size_t len)
{
    struct fdisp *d = (struct fdisp *)s;
    return d->target->write(d->target, off, buf, len);
}

static fc_rc
fd_zero(struct fc_sink *s, uint64_t off, uint64_t len)
{
    struct fdisp *d = (struct fdisp *)s;
    return d->target->zero(d->target, off, len);
}

static fc_rc
fd_end(struct fc_sink *s, uint64_t size, const uint8_t *sha)
{
    struct fdisp *d = (struct fdisp *)s;
    return d->target->end(d->target, size, sha);
}

/* ---- qemu-img fallback ---- */
fc_rc
img_run_qemu_img(const char *const *argv_tail, size_t n, const char *why)
{
    FC_AUTOFREE char *qi = fc_find_program("qemu-img", getenv("PATH") ? getenv("PATH")
                                                                     : "/usr/bin:/bin");
    if (!qi)
        return FC_ERR(FC_E_UNSUPPORTED,
                      "%s; fluid-image supports %s, and qemu-img (the fallback) is not "
                      "installed", why, img_supported_list());
    fc_log(FC_WARN, FC_MSG("handing the image to qemu-img"), FC_STR("reason", why),
           FC_STR("program", qi));
    const char *argv[40];
    size_t k = 0;
    argv[k++] = qi;
    for (size_t i = 0; i < n && k < 39; i++)
        argv[k++] = argv_tail[i];
    argv[k] = NULL;
    struct fc_spawn sp = {.argv = argv, .fd = {0, 1, 2}};
    pid_t pid;
    fc_rc rc = fc_spawn(&sp, &pid);
    if (rc != FC_OK)
        return rc;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return FC_ERRNO(FC_E_CHILD, "wait for qemu-img");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return FC_ERR(FC_E_CHILD, "qemu-img failed (%s %d)",
                      WIFEXITED(st) ? "exit status" : "signal",
                      WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return FC_OK;
}

static char *
tmp_name(const char *dst)
{
    size_t n = strlen(dst) + 16;
    char *t = malloc(n);
    if (t)
        snprintf(t, n, "%s.tmp-XXXXXX", dst);
    return t;
}

static fc_rc
fallback_convert(const struct img_convert_opts *o, const char *why)
{
    if (strcmp(o->src, "-") == 0 || strcmp(o->dst, "-") == 0)
        return FC_ERR(FC_E_UNSUPPORTED,
                      "%s; fluid-image supports %s, and the qemu-img fallback needs files, "
                      "not pipes", why, img_supported_list());
    FC_AUTOFREE char *tmp = tmp_name(o->dst);
    if (!tmp)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return FC_ERRNO(FC_E_IO, "create a temporary file beside %s", o->dst);
    close(fd);
    const char *a[16];
    size_t k = 0;
    a[k++] = "convert";
    if (o->src_fmt)
        a[k++] = "-f", a[k++] = o->src_fmt;
    a[k++] = "-O", a[k++] = o->dst_fmt;
    if (o->options)
        a[k++] = "-o", a[k++] = o->options;
    if (o->compress)
        a[k++] = "-c";
    if (o->progress)
        a[k++] = "-p";
    a[k++] = o->src;
    a[k++] = tmp;
    if (o->m)
        fc_event_info(o->m, json_pack("{s:s,s:s}", "note", "converting with qemu-img",
                                      "detail", why));
    fc_rc rc = img_run_qemu_img(a, k, why);
    if (rc == FC_OK && rename(tmp, o->dst) != 0)
        rc = FC_ERRNO(FC_E_IO, "rename %s to %s", tmp, o->dst);
    if (rc != FC_OK)
        unlink(tmp);
    return rc;
}

/* ---- options ---- */
static fc_rc
apply_options(const struct img_writer *w, void *st, const char *opts)
{
    if (!opts || !*opts)
        return FC_OK;
    FC_AUTOFREE char *copy = strdup(opts);
    if (!copy)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    char *save = NULL;
    for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            return FC_ERR(FC_E_INVALID, "-o %s: expected key=value", kv);
        *eq = '\0';
        fc_rc rc = w->option(st, kv, eq + 1);
        if (rc != FC_OK)
            return rc;
    }
    return FC_OK;
}

static fc_rc
reopen_spool(struct img_in *in, int fd)
{
    close(in->fd);
    in->fd = fd;
    in->seekable = true;
    in->pos = 0;
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0)
        return FC_ERRNO(FC_E_IO, "spool size");
    in->size = (uint64_t)end;
    in->head_len = in->size < IMG_HEAD_MAX ? (size_t)in->size : IMG_HEAD_MAX;
    if (pread(fd, in->head, in->head_len, 0) != (ssize_t)in->head_len)
        return FC_ERRNO(FC_E_IO, "read the spool file");
    return FC_OK;
}

static fc_rc
run_reader(struct conv *c, const struct img_reader *rd)
{
    const struct img_convert_opts *o = c->o;
    fc_rc rc;
    if (rd->random_access && rd->random_access(&c->in) && !c->in.seekable) {
        note(c, "spooling input to a temporary file", "the input format needs random access");
        if ((rc = img_in_spool(&c->in, c->tmpdir)) != FC_OK)
            return rc;
    }
    void *rst = calloc(1, rd->state_size);
    if (!rst)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    c->in.backing = o->backing;
    rc = rd->open(rst, &c->in);
    struct img_info info = {0};
    if (rc == FC_OK) {
        rd->info(rst, &info);
        if (info.vsize == FC_SIZE_UNKNOWN && (c->wd->needs_size || o->framed_out)) {
            rd->close(rst);
            memset(rst, 0, rd->state_size);
            note(c, "spooling input to a temporary file",
                 "plain bytes on a pipe carry no size, and the output needs it first");
            if ((rc = img_in_spool(&c->in, c->tmpdir)) == FC_OK)
                rc = rd->open(rst, &c->in);
            if (rc == FC_OK)
                rd->info(rst, &info);
        }
    }
    if (rc == FC_OK)
        rc = open_output(c, rd, rst, info.vsize);
    if (rc == FC_OK)
        rc = img_pump_threaded(rd, rst, &c->sink, &fc_cancel_requested);
    rd->close(rst);
    free(rst);
    return rc;
}

static json_t *
result(struct conv *c, const char *src_fmt, const char *dst_fmt, int final_fd)
{
    struct stat st;
    json_int_t osize = final_fd >= 0 && fstat(final_fd, &st) == 0 && S_ISREG(st.st_mode)
                           ? (json_int_t)st.st_size
                           : (json_int_t)c->out.bytes_written;
    const char *path = c->planned ? "planned" : c->spool_out ? "spooled" : "direct";
    return json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:I,s:I}", "source_format", src_fmt,
                     "format", dst_fmt, "virtual_size", (json_int_t)c->vsize, "bytes_read",
                     (json_int_t)c->in.bytes_read, "bytes_written",
                     (json_int_t)c->out.bytes_written, "data_bytes", (json_int_t)c->data_bytes,
                     "zero_bytes", (json_int_t)c->zero_bytes, "output_size", osize, "output",
                     path, "map_bytes_read", (json_int_t)c->map_bytes_read, "bytes_direct",
                     (json_int_t)c->out.bytes_direct);
}

fc_rc
img_convert(const struct img_convert_opts *o)
{
    char why[256];
    const struct img_writer *wd = img_find_writer(o->dst_fmt);
    if (!wd) {
        snprintf(why, sizeof why, "output format \"%s\" is not handled by fluid-image",
                 o->dst_fmt);
        return fallback_convert(o, why);
    }
    if (o->src_fmt && !img_find_reader(o->src_fmt)) {
        snprintf(why, sizeof why, "input format \"%s\" is not handled by fluid-image",
                 o->src_fmt);
        return fallback_convert(o, why);
    }
    if (o->compress && !wd->can_compress)
        return FC_ERR(FC_E_UNSUPPORTED, "-c: %s output cannot be compressed (qcow2 and vmdk can)",
                      wd->name);
    if (o->framed_out && strcmp(o->dst, "-") != 0)
        return FC_ERR(FC_E_INVALID, "--framed writes the stream to stdout: give - as DST");

    struct conv *c = calloc(1, sizeof *c);
    if (!c)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    c->o = o;
    c->tmpdir = o->tmpdir ? o->tmpdir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    c->out.fd = -1;
    c->sink = (struct fc_sink){c_begin, c_write, c_zero, c_end};
    c->vsize = FC_SIZE_UNKNOWN;
    c->wd = wd;
    c->final_fd = c->wfd = -1;
    const struct img_reader *rd = NULL;
    char *tmp = NULL;
    bool framed_raw = false;
    struct split fsplit;

    fc_rc rc = img_in_open(&c->in, o->src);
    if (rc != FC_OK)
        goto out;
    bool framed_in = c->in.head_len >= FC_STREAM_MAGIC_LEN &&
                     memcmp(c->in.head, FC_STREAM_MAGIC, FC_STREAM_MAGIC_LEN) == 0;
    if (!framed_in) {
        const char *foreign = o->src_fmt ? NULL : img_foreign_probe(c->in.head, c->in.head_len);
        if (foreign) {
            snprintf(why, sizeof why, "%s is a %s image, which fluid-image does not read",
                     c->in.name, foreign);
            img_in_close(&c->in);
            free(c);
            return fallback_convert(o, why);
        }
        rd = o->src_fmt ? img_find_reader(o->src_fmt) : img_probe(&c->in);
    }

    /* the output: a temporary name beside DST, stdout or a device (planned or spooled when
     * the writer needs seeks it cannot make there) */
    c->wst = calloc(1, wd->state_size);
    if (!c->wst) {
        rc = FC_ERR(FC_E_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = apply_options(wd, c->wst, o->options)) != FC_OK)
        goto out;
    struct stat st;
    c->seeks = wd->needs_seek && wd->needs_seek(c->wst);
    if (strcmp(o->dst, "-") == 0) {
        c->final_fd = 1;
        if (o->framed_out && wd == &img_raw_writer)
            framed_raw = true;
        else if (o->framed_out || (c->seeks && !(fstat(1, &st) == 0 && S_ISREG(st.st_mode))))
            c->pipe_out = true;
    } else if (stat(o->dst, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) {
            rc = FC_ERR(FC_E_INVALID, "%s is a directory", o->dst);
            goto out;
        }
        c->final_fd = open(o->dst, O_WRONLY | O_CLOEXEC);
        if (c->final_fd < 0) {
            rc = FC_ERRNO(FC_E_IO, "open %s", o->dst);
            goto out;
        }
        c->pipe_out = c->seeks;
    } else {
        if (!(tmp = tmp_name(o->dst))) {
            rc = FC_ERR(FC_E_NOMEM, "out of memory");
            goto out;
        }
        c->final_fd = mkostemp(tmp, O_CLOEXEC);
        if (c->final_fd < 0) {
            rc = FC_ERRNO(FC_E_IO, "create a temporary file beside %s", o->dst);
            free(tmp);
            tmp = NULL;
            goto out;
        }
        mode_t um = umask(0);
        umask(um);
        fchmod(c->final_fd, 0666 & ~um);
    }
    if (framed_raw) {
        fc_stream_writer_init(&c->fw, 1, true);
        c->fw_on = c->fw_begun = c->out_ready = true;
        fsplit = (struct split){{sp_begin, sp_write, sp_zero, sp_end}, &c->fw.sink, "raw"};
        c->next = &fsplit.sink;
    }

    if (framed_in) {
        struct fdisp d = {.sink = {fd_begin, fd_write, fd_zero, fd_end}, .c = c, .spool_fd = -1};
        rc = read_framed(c, &d.sink);
        if (d.spool_fd >= 0) {
            fc_stream_writer_fini(&d.spool);
            if (rc == FC_OK)
                rc = reopen_spool(&c->in, d.spool_fd);
            else
                close(d.spool_fd);
            if (rc == FC_OK && !(rd = img_find_reader(d.format)))
                rc = FC_ERR(FC_E_UNSUPPORTED, "the framed input carries a %s image; "
                            "fluid-image reads %s", d.format, img_supported_list());
            if (rc == FC_OK)
                rc = run_reader(c, rd);
        } else {
            rd = &img_raw_reader;
        }
    } else {
        rc = run_reader(c, rd);
    }
    if (rc == FC_OK && c->spool_out)
        rc = copy_spool(c->wfd, c->final_fd, o->framed_out, wd->name);
    if (rc == FC_OK && c->planned)
        rc = end_planned(c);
    if (rc == FC_OK && tmp && rename(tmp, o->dst) != 0)
        rc = FC_ERRNO(FC_E_IO, "rename %s to %s", tmp, o->dst);
    if (rc == FC_OK && o->m)
        fc_event_done(o->m, result(c, rd->name, wd->name, c->final_fd));
out:
    img_out_fini(&c->out); /* joins the write-behind thread, which may write frames */
    if (rc != FC_OK && c->fw_begun)
        fc_stream_writer_abort(&c->fw, rc, fc_error_msg());
    if (c->fw_on)
        fc_stream_writer_fini(&c->fw);
    if (c->planned && o->framed_out)
        img_fsink_fini(&c->fs);
    if (c->wst && wd->close)
        wd->close(c->wst);
    free(c->wst);
    img_map_free(&c->map);
    if (c->wfd >= 0 && c->wfd != c->final_fd)
        close(c->wfd);
    if (c->final_fd > 1)
        close(c->final_fd);
    if (tmp && rc != FC_OK)
        unlink(tmp);
    free(tmp);
    img_in_close(&c->in);
    free(c);
    return rc;
}
