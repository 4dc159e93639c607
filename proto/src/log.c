/* SPDX-License-Identifier: Apache-2.0 */
/* Structured logs on stderr: JSON lines, or text on a terminal / FLUID_LOG_FORMAT=text. */
#include "fluid/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int fc_log_min_level = FC_INFO;
static const char *prog_name = "fluid";
static int text_format = -1;

static _Thread_local char ctx_reloc[128], ctx_task[128], ctx_stage[64];

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
fc_log_init(const char *prog)
{
    if (prog)
        prog_name = prog;
    const char *lv = getenv("FLUID_LOG_LEVEL");
    if (lv) {
        for (int i = 0; i < 4; i++)
            if (strcasecmp(lv, level_names[i]) == 0)
                fc_log_min_level = i;
        if (strcasecmp(lv, "off") == 0)
            fc_log_min_level = FC_LOG_OFF;
    }
    const char *fmt = getenv("FLUID_LOG_FORMAT");
    if (fmt && strcmp(fmt, "text") == 0)
        text_format = 1;
    else if (fmt && strcmp(fmt, "json") == 0)
        text_format = 0;
    else
        text_format = isatty(2) ? 1 : 0;
}

static void
set_ctx(char *dst, size_t cap, const char *v)
{
    if (!v)
        dst[0] = '\0';
    else
        snprintf(dst, cap, "%s", v);
}

void
fc_log_context(const char *relocation_id, const char *task_id, const char *stage)
{
    set_ctx(ctx_reloc, sizeof ctx_reloc, relocation_id);
    set_ctx(ctx_task, sizeof ctx_task, task_id);
    set_ctx(ctx_stage, sizeof ctx_stage, stage);
}

static void
timestamp(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void
fc_log_emit(enum fc_log_level level, const struct fc_log_field *f, size_t n)
{
    if (text_format < 0)
        fc_log_init(NULL);
    if ((int)level < fc_log_min_level || level > FC_ERROR)
        return;
    char ts[40];
    timestamp(ts, sizeof ts);
    if (text_format) {
        char line[4096];
        size_t len = 0;
        const char *msg = "";
        for (size_t i = 0; i < n; i++)
            if (f[i].type == FC_LF_STR && strcmp(f[i].key, "msg") == 0)
                msg = f[i].v.s ? f[i].v.s : "";
        len += (size_t)snprintf(line, sizeof line, "%s %s %s[%d]: %s", ts, level_names[level],
                                prog_name, (int)getpid(), msg);
        for (size_t i = 0; i < n && len < sizeof line; i++) {
            if (f[i].type == FC_LF_STR && strcmp(f[i].key, "msg") == 0)
                continue;
            switch (f[i].type) {
            case FC_LF_STR:
                len += (size_t)snprintf(line + len, sizeof line - len, " %s=%s", f[i].key,
                                        f[i].v.s ? f[i].v.s : "(null)");
                break;
            case FC_LF_U64:
                len += (size_t)snprintf(line + len, sizeof line - len, " %s=%llu", f[i].key,
                                        (unsigned long long)f[i].v.u);
                break;
            case FC_LF_I64:
                len += (size_t)snprintf(line + len, sizeof line - len, " %s=%lld", f[i].key,
                                        (long long)f[i].v.i);
                break;
            case FC_LF_DBL:
                len += (size_t)snprintf(line + len, sizeof line - len, " %s=%g", f[i].key,
                                        f[i].v.d);
                break;
            }
        }
        if (len >= sizeof line)
            len = sizeof line - 1;
        line[len] = '\n';
        fwrite(line, 1, len + 1, stderr);
        fflush(stderr);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level_names[level]));
    json_object_set_new(o, "prog", json_string(prog_name));
    json_object_set_new(o, "pid", json_integer(getpid()));
    if (ctx_reloc[0])
        json_object_set_new(o, "relocation", json_string(ctx_reloc));
    if (ctx_task[0])
        json_object_set_new(o, "task", json_string(ctx_task));
    if (ctx_stage[0])
        json_object_set_new(o, "stage", json_string(ctx_stage));
    for (size_t i = 0; i < n; i++) {
        json_t *v = NULL;
        switch (f[i].type) {
        case FC_LF_STR:
            v = f[i].v.s ? json_string(f[i].v.s) : json_null();
            if (!v) /* not UTF-8 */
                v = json_string("(invalid UTF-8)");
            break;
        case FC_LF_U64:
            v = json_integer((json_int_t)f[i].v.u);
            break;
        case FC_LF_I64:
            v = json_integer(f[i].v.i);
            break;
        case FC_LF_DBL:
            v = json_real(f[i].v.d);
            break;
        }
        json_object_set_new(o, f[i].key, v);
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s) {
        fprintf(stderr, "%s\n", s);
        fflush(stderr);
        free(s);
    }
}

void
fc_logf(enum fc_log_level level, const char *fmt, ...)
{
    if ((int)level < fc_log_min_level)
        return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    struct fc_log_field f = FC_MSG(buf);
    fc_log_emit(level, &f, 1);
}
