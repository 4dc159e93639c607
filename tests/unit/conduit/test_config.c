/* SPDX-License-Identifier: Apache-2.0 */
/* The key = value configuration reader of fluid-conduit and fluidctl. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fluid/error.h"

static char got[8][2][64];
static int ngot;

static fc_rc
set(void *arg, const char *key, const char *value)
{
    (void)arg;
    if (strcmp(key, "bad") == 0)
        return FC_ERR(FC_E_INVALID, "unknown key \"%s\"", key);
    snprintf(got[ngot][0], 64, "%s", key);
    snprintf(got[ngot][1], 64, "%s", value);
    ngot++;
    return FC_OK;
}

static const char *
write_conf(const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "/tmp/test_config-%d.conf", getpid());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

Test(config, keys_values_comments)
{
    ngot = 0;
    const char *p = write_conf("# comment\n\n  amqp_url =  amqp://h:1/x = y  \nmax_parallel=4\n");
    cr_assert_eq(fc_conf_load(p, true, set, NULL), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(ngot, 2);
    cr_assert_str_eq(got[0][0], "amqp_url");
    cr_assert_str_eq(got[0][1], "amqp://h:1/x = y");
    cr_assert_str_eq(got[1][1], "4");
    unlink(p);
}

Test(config, errors_name_file_and_line)
{
    const char *p = write_conf("a = 1\nbad = 2\n");
    cr_assert_eq(fc_conf_load(p, true, set, NULL), FC_E_INVALID);
    char want[300];
    snprintf(want, sizeof want, "%s:2: unknown key \"bad\"", p);
    cr_assert_str_eq(fc_error_msg(), want);
    p = write_conf("just words\n");
    cr_assert_eq(fc_conf_load(p, true, set, NULL), FC_E_INVALID);
    cr_assert(strstr(fc_error_msg(), ":1: expected key = value"), "%s", fc_error_msg());
    unlink(p);
    cr_assert_eq(fc_conf_load("/nonexistent/x.conf", false, set, NULL), FC_OK);
    cr_assert_eq(fc_conf_load("/nonexistent/x.conf", true, set, NULL), FC_E_NOTFOUND);
    unsigned v;
    cr_assert_eq(fc_conf_uint("n", "12", 1, 100, &v), FC_OK);
    cr_assert_eq(v, 12);
    cr_assert_eq(fc_conf_uint("n", "0", 1, 100, &v), FC_E_INVALID);
    cr_assert_eq(fc_conf_uint("n", "-3", 0, 100, &v), FC_E_INVALID);
    cr_assert_eq(fc_conf_uint("n", "7x", 0, 100, &v), FC_E_INVALID);
    cr_assert_eq(fc_conf_uint("n", "", 0, 100, &v), FC_E_INVALID);
}
