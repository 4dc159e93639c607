/* SPDX-License-Identifier: Apache-2.0 */
/* Structured logging: one JSON object per line on stderr (text on a terminal or with
 * FLUID_LOG_FORMAT=text). The level is checked before the fields are built.
 *
 *   fc_log(FC_INFO, FC_MSG("volume copied"), FC_U64("bytes", n), FC_STR("host", host));
 *
 * There is no field type for credentials: never log a password, token or URL with userinfo. */
#ifndef FLUID_LOG_H
#define FLUID_LOG_H

#include <stddef.h>
#include <stdint.h>

enum fc_log_level { FC_DEBUG = 0, FC_INFO = 1, FC_WARN = 2, FC_ERROR = 3, FC_LOG_OFF = 4 };

enum fc_log_type { FC_LF_STR, FC_LF_U64, FC_LF_I64, FC_LF_DBL };
struct fc_log_field {
    enum fc_log_type type;
    const char *key;
    union {
        const char *s;
        uint64_t u;
        int64_t i;
        double d;
    } v;
};
#define FC_MSG(m_) ((struct fc_log_field){FC_LF_STR, "msg", {.s = (m_)}})
#define FC_STR(k_, x_) ((struct fc_log_field){FC_LF_STR, (k_), {.s = (x_)}})
#define FC_U64(k_, x_) ((struct fc_log_field){FC_LF_U64, (k_), {.u = (uint64_t)(x_)}})
#define FC_I64(k_, x_) ((struct fc_log_field){FC_LF_I64, (k_), {.i = (int64_t)(x_)}})
#define FC_DBL(k_, x_) ((struct fc_log_field){FC_LF_DBL, (k_), {.d = (double)(x_)}})

extern int fc_log_min_level;

/* Program name, and FLUID_LOG_LEVEL (debug|info|warn|error) / FLUID_LOG_FORMAT (json|text). */
void fc_log_init(const char *prog);
/* Thread-local context added to every record (NULL clears a field). Copied. */
void fc_log_context(const char *relocation_id, const char *task_id, const char *stage);
void fc_log_emit(enum fc_log_level level, const struct fc_log_field *f, size_t n);
/* A printf-style message only. */
void fc_logf(enum fc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define fc_log(level, ...)                                                                     \
    do {                                                                                       \
        if ((int)(level) >= fc_log_min_level) {                                                \
            const struct fc_log_field fc_lf_[] = {__VA_ARGS__};                                \
            fc_log_emit((level), fc_lf_, sizeof fc_lf_ / sizeof fc_lf_[0]);                    \
        }                                                                                      \
    } while (0)

#endif
