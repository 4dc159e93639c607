/* SPDX-License-Identifier: Apache-2.0 */
/* Internal helpers of the message parsers (msg*.c): a JSON path that grows and shrinks as a
 * parser walks an object, and typed field readers that report `path: reason`. */
#ifndef FLUID_MSG_INTERNAL_H
#define FLUID_MSG_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fluid/error.h"
#include "fluid/msg.h"

struct fc_jp {
    char path[512];
    size_t len;
};

/* Appends ".key" (or "key" at the root) / "[i]"; returns the old length for jp_pop. */
size_t jp_key(struct fc_jp *p, const char *key);
size_t jp_idx(struct fc_jp *p, size_t i);
void jp_pop(struct fc_jp *p, size_t old);
/* FC_E_INVALID (or rc) with "path: reason"; records the path for fc_msg_error_path(). */
fc_rc jp_err(struct fc_jp *p, fc_rc rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same for the field key of the current object, without pushing it. */
fc_rc jp_err_at(struct fc_jp *p, const char *key, fc_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void jp_set_error_path(const char *path);

const char *j_type_name(const json_t *j);

/* Rejects any key of obj not in allowed (NULL-terminated). */
fc_rc j_only(struct fc_jp *p, const json_t *obj, const char *const *allowed);
/* obj must be an object (path names it). */
fc_rc j_want_object(struct fc_jp *p, const json_t *j);

enum j_charset {
    J_ANY,  /* any UTF-8 text (NUL is already refused by the loader) */
    J_LINE, /* no control characters (names, hosts) */
    J_ID,   /* fc_id_valid */
    J_KEY,  /* fc_key_valid */
    J_SITE, /* fc_site_valid */
    J_KIND, /* syntax and known kind */
    J_TS,   /* RFC 3339 UTC timestamp */
};

/* Reads string obj[key]. Absent: error if required, else *out stays NULL (or dflt copied
 * when dflt != NULL). Empty strings are refused unless allow_empty. */
fc_rc j_str(struct fc_jp *p, const json_t *obj, const char *key, bool required, size_t max,
            enum j_charset cs, bool allow_empty, const char *dflt, char **out);
/* Checks one string value v at the current path. */
fc_rc j_str_value(struct fc_jp *p, const json_t *v, size_t max, enum j_charset cs,
                  bool allow_empty, char **out);
/* Integer obj[key] in [min, max]; absent: error if required, else *out = dflt. */
fc_rc j_uint(struct fc_jp *p, const json_t *obj, const char *key, bool required, uint64_t min,
             uint64_t max, uint64_t dflt, uint64_t *out);
fc_rc j_int_value(struct fc_jp *p, const json_t *v, int64_t min, int64_t max, int64_t *out);
fc_rc j_bool(struct fc_jp *p, const json_t *obj, const char *key, bool dflt, bool *out);
/* Array of strings obj[key] with at most maxn entries. */
fc_rc j_strv(struct fc_jp *p, const json_t *obj, const char *key, bool required, size_t maxn,
             size_t maxlen, enum j_charset cs, char ***out, size_t *n);
/* Free-form JSON value (object when want_object) limited to FC_DEPTH_MAX nesting. */
fc_rc j_free_form(struct fc_jp *p, const json_t *v, bool want_object);

/* Checks "schema" against want ("fluid.task/1"): same name with another major version is
 * FC_E_UNSUPPORTED; required unless optional. */
fc_rc j_schema(struct fc_jp *p, const json_t *obj, const char *want, bool optional);

bool fc_ts_valid(const char *s);
void fc_strv_free(char **v, size_t n);
char **fc_strv_dup(char *const *v, size_t n);
json_t *j_strv_json(char *const *v, size_t n);
/* json_object_set_new that ignores NULL values (for optional fields). */
void j_set_opt_str(json_t *o, const char *key, const char *v);

/* Parses a task at path p (used by fc_task_from_json and the plan parser). In a plan,
 * schema/relocation_id/idempotency_key may be absent: relocation_id then defaults to
 * plan_rid and idempotency_key to "<key_base>/<task_id>". */
fc_rc fc_task_parse_at(struct fc_jp *p, const json_t *j, bool in_plan, const char *plan_rid,
                       const char *key_base, struct fc_task **out);
fc_rc fc_plan_parse_at(struct fc_jp *p, const json_t *j, bool in_request, const char *req_rid,
                       const char *key_base, struct fc_plan **out);

#endif
