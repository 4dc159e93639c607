/* SPDX-License-Identifier: Apache-2.0 */
/* One error convention: the code that detects a failure stores a one-line message in a
 * thread-local and returns the fc_rc; callers pass the rc up (libvirt, libgit2 style).
 * A message names the field, offset, host or stage, and never a secret. */
#ifndef FLUID_ERROR_H
#define FLUID_ERROR_H

#include "fluid/rc.h"

struct fc_error {
    fc_rc rc;
    const char *file;
    int line;
    char msg[1024];
};

fc_rc fc_error_at(fc_rc rc, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define FC_ERR(rc, ...) fc_error_at((rc), __FILE__, __LINE__, __VA_ARGS__)
/* FC_ERR with ": strerror(errno)" appended. */
fc_rc fc_error_errno_at(fc_rc rc, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define FC_ERRNO(rc, ...) fc_error_errno_at((rc), __FILE__, __LINE__, __VA_ARGS__)

/* Prefixes the current message with "prefix: " (context added on the way up). */
void fc_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The last error of this thread (rc FC_OK and msg "" when none). */
const struct fc_error *fc_error_last(void);
const char *fc_error_msg(void);
void fc_error_clear(void);

#endif
