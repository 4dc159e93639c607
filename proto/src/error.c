/* SPDX-License-Identifier: Apache-2.0 */
/* The thread-local last error. */
#include "fluid/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local struct fc_error last;

static void __attribute__((format(printf, 4, 0)))
store(fc_rc rc, const char *file, int line, const char *fmt, va_list ap, int err)
{
    last.rc = rc;
    last.file = file;
    last.line = line;
    int n = vsnprintf(last.msg, sizeof last.msg, fmt, ap);
    if (err && n >= 0 && (size_t)n < sizeof last.msg)
        snprintf(last.msg + n, sizeof last.msg - (size_t)n, ": %s", strerror(err));
}

fc_rc
fc_error_at(fc_rc rc, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    store(rc, file, line, fmt, ap, 0);
    va_end(ap);
    return rc;
}

fc_rc
fc_error_errno_at(fc_rc rc, const char *file, int line, const char *fmt, ...)
{
    int err = errno;
    va_list ap;
    va_start(ap, fmt);
    store(rc, file, line, fmt, ap, err);
    va_end(ap);
    errno = err;
    return rc;
}

void
fc_error_prefix(const char *fmt, ...)
{
    char pre[512], old[sizeof last.msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, last.msg, sizeof old);
    size_t pl = strlen(pre), ol = strlen(old), cap = sizeof last.msg - 1;
    if (pl > cap - 2)
        pl = cap - 2;
    memcpy(last.msg, pre, pl);
    memcpy(last.msg + pl, ": ", 2);
    if (ol > cap - pl - 2)
        ol = cap - pl - 2;
    memcpy(last.msg + pl + 2, old, ol);
    last.msg[pl + 2 + ol] = '\0';
}

const struct fc_error *
fc_error_last(void)
{
    return &last;
}

const char *
fc_error_msg(void)
{
    return last.msg;
}

void
fc_error_clear(void)
{
    memset(&last, 0, sizeof last);
}
