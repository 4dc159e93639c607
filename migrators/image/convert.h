/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-image's two commands, callable from main() and from tests. */
#ifndef FLUID_IMAGE_CONVERT_H
#define FLUID_IMAGE_CONVERT_H

#include <stdbool.h>

#include "fluid/migrator.h"
#include "image.h"

struct img_convert_opts {
    const char *src, *dst;  /* paths, or "-" for stdin/stdout */
    const char *src_fmt;    /* -f, NULL = detect */
    const char *dst_fmt;    /* -O */
    const char *options;    /* -o key=value,... or NULL */
    bool compress;          /* -c */
    bool progress;          /* -p: progress on stderr */
    bool framed_out;        /* --framed: write the framed stream on stdout */
    int threads;            /* -m / threads for compression, 0 = all CPUs */
    const char *tmpdir;     /* spool files; NULL = $TMPDIR or /tmp */
    const char *backing;    /* --backing: the qcow2 input's backing file, vouched for */
    struct fc_migrator *m;  /* events (may be NULL) */
};

/* Converts src to dst. The destination appears only on success (a temporary name in the
 * same folder is renamed). Unknown formats go to qemu-img when it is installed. */
fc_rc img_convert(const struct img_convert_opts *o);

/* Runs qemu-img with argv_tail (after the program), saying why in the log; FC_E_UNSUPPORTED
 * listing our formats when qemu-img is not installed. */
fc_rc img_run_qemu_img(const char *const *argv_tail, size_t n, const char *why);

/* Prints what fluid-image knows about path (text or JSON on stdout). */
fc_rc img_info(const char *path, const char *fmt, bool json, struct fc_migrator *m);

#endif
