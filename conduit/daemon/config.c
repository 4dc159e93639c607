/* SPDX-License-Identifier: Apache-2.0 */
/* key = value configuration files (see config.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"

static char *
trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

fc_rc
fc_conf_load(const char *path, bool must_exist,
             fc_rc (*set)(void *arg, const char *key, const char *value), void *arg)
{
    FC_AUTOFCLOSE FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT && !must_exist)
            return FC_OK;
        return FC_ERRNO(errno == ENOENT ? FC_E_NOTFOUND : FC_E_IO, "config %s", path);
    }
    char line[4096];
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f))
            return FC_ERR(FC_E_INVALID, "%s:%u: line longer than %zu bytes", path, lineno,
                          sizeof line - 2);
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq)
            return FC_ERR(FC_E_INVALID, "%s:%u: expected key = value", path, lineno);
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        fc_rc rc = set(arg, key, value);
        if (rc != FC_OK) {
            fc_error_prefix("%s:%u", path, lineno);
            return rc;
        }
    }
    if (ferror(f))
        return FC_ERRNO(FC_E_IO, "config %s: read", path);
    return FC_OK;
}

fc_rc
fc_conf_uint(const char *what, const char *value, unsigned min, unsigned max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(value, &end, 10);
    if (!*value || *end || errno || !isdigit((unsigned char)*value) || v < min || v > max)
        return FC_ERR(FC_E_INVALID, "%s: \"%.64s\" is not a number in [%u, %u]", what, value,
                      min, max);
    *out = (unsigned)v;
    return FC_OK;
}
