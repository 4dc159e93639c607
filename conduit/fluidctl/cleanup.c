/* SPDX-License-Identifier: Apache-2.0 */
/* fluidctl cleanup ID (the conduit deletes what the relocation created on its target, and
 * nothing else) and fluidctl overview ID (the recorded overview of a finished relocation). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "crpc.h"
#include "ctl.h"
#include "fluid/error.h"

static int
report_cmd(int argc, char **argv, bool cleanup)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    const char *name = cleanup ? "cleanup" : "overview";
    bool json = false;
    double timeout = cleanup ? 900 : 10;
    int ch;
    while ((ch = getopt_long(argc, argv, "jt:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j': json = true; break;
        case 't': timeout = atof(optarg); break;
        case 'h':
            printf("usage: fluidctl %s [--json] [--timeout SECONDS] RELOCATION_ID\n", name);
            return FC_CTL_OK;
        default: return FC_CTL_USAGE;
        }
    }
    if (optind != argc - 1 || timeout <= 0) {
        fprintf(stderr, "usage: fluidctl %s [--json] [--timeout SECONDS] RELOCATION_ID\n", name);
        return FC_CTL_USAGE;
    }
    const char *rid = argv[optind];
    if (!fc_id_valid(rid)) {
        fprintf(stderr, "fluidctl %s: invalid relocation id \"%s\"\n", name, rid);
        return FC_CTL_USAGE;
    }
    json_t *r = NULL;
    fc_rc rc = fc_ctl_conduit_call(rid, cleanup ? "cleanup" : "info", timeout, &r);
    if (rc != FC_OK)
        return fc_ctl_fail(name, rc);
    int code = FC_CTL_OK;
    const char *refused = json_string_value(json_object_get(r, "refused"));
    const json_t *rep = json_object_get(r, cleanup ? "cleanup" : "overview");
    if (!json_is_true(json_object_get(r, "found"))) {
        fprintf(stderr, "fluidctl %s: %s: unknown to the conduit\n", name, rid);
        code = FC_CTL_NOTFOUND;
    } else if (refused) {
        fprintf(stderr, "fluidctl %s: %s: %s\n", name, rid, refused);
        code = FC_CTL_INVALID;
    } else if (!rep || json_is_null(rep)) {
        fprintf(stderr, "fluidctl %s: %s: no %s recorded (state %s)\n", name, rid, name,
                json_string_value(json_object_get(r, "state")));
        code = FC_CTL_NOTFOUND;
    } else {
        if (json) {
            char *t = json_dumps(rep, JSON_COMPACT);
            printf("%s\n", t ? t : "");
            free(t);
        } else if (cleanup) {
            fc_ctl_print_cleanup(stdout, rep);
        } else {
            fc_ctl_print_overview(stdout, rep);
        }
        if (json_object_get(rep, "error") || json_array_size(json_object_get(rep, "errors")))
            code = FC_CTL_FAILED;
    }
    json_decref(r);
    return code;
}

int
fc_ctl_cleanup(int argc, char **argv)
{
    return report_cmd(argc, argv, true);
}

int
fc_ctl_overview(int argc, char **argv)
{
    return report_cmd(argc, argv, false);
}
