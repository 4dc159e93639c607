/* SPDX-License-Identifier: Apache-2.0 */
/* fluidctl resume ID: the conduit runs a failed or cancelled relocation again — its failed
 * and cancelled tasks (every task after a cleanup; the planning when that is what failed),
 * never what is done and still there (docs/fluid-conduit.md, "Resume"). --watch then
 * follows it like relocate --watch. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "crpc.h"
#include "ctl.h"
#include "fluid/error.h"

static const char usage_text[] =
    "usage: fluidctl resume [--watch [--json] [--timeout SECONDS]] RELOCATION_ID\n"
    "  runs a failed or cancelled relocation again: its failed and cancelled tasks (every\n"
    "  task if it was cleaned up since; the planning if that is what failed); what is done\n"
    "  is not done again\n"
    "  --watch   show it live until it ends, then its overview; --json: JSON lines\n";

int
fc_ctl_resume(int argc, char **argv)
{
    static const struct option opts[] = {
        {"watch", no_argument, NULL, 'w'}, {"json", no_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool watch = false, json = false;
    const char *timeout = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "wjt:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'w': watch = true; break;
        case 'j': json = true; break;
        case 't': timeout = optarg; break;
        case 'h': fputs(usage_text, stdout); return FC_CTL_OK;
        default: fputs(usage_text, stderr); return FC_CTL_USAGE;
        }
    }
    double t = timeout ? atof(timeout) : 0;
    if (optind != argc - 1 || ((json || timeout) && !watch) || t < 0) {
        fputs(usage_text, stderr);
        return FC_CTL_USAGE;
    }
    const char *rid = argv[optind];
    if (!fc_id_valid(rid)) {
        fprintf(stderr, "fluidctl resume: invalid relocation id \"%s\"\n", rid);
        return FC_CTL_USAGE;
    }
    json_t *r = NULL;
    fc_rc rc = fc_ctl_conduit_call(rid, "resume", 30, &r);
    if (rc != FC_OK)
        return fc_ctl_fail("resume", rc);
    const char *refused = json_string_value(json_object_get(r, "refused"));
    const json_t *res = json_object_get(r, "resumed");
    int code = FC_CTL_OK;
    if (!json_is_true(json_object_get(r, "found"))) {
        fprintf(stderr, "fluidctl resume: %s: unknown to the conduit\n", rid);
        code = FC_CTL_NOTFOUND;
    } else if (refused || !res) {
        fprintf(stderr, "fluidctl resume: %s: %s\n", rid, refused ? refused : "no answer");
        code = FC_CTL_INVALID;
    } else {
        /* stdout stays JSON lines only with --watch --json */
        json_int_t n = json_integer_value(json_object_get(res, "tasks_reset"));
        FILE *f = watch && json ? stderr : stdout;
        if (json_is_true(json_object_get(res, "replan")))
            fprintf(f, "relocation %s resumed: its planning runs again\n", rid);
        else
            fprintf(f, "relocation %s resumed: %lld task%s run again%s\n", rid, (long long)n,
                    n == 1 ? "" : "s",
                    json_is_true(json_object_get(res, "full"))
                        ? " (every task: it was cleaned up)" : "");
    }
    json_decref(r);
    if (code != FC_CTL_OK || !watch)
        return code;
    return fc_ctl_live(rid, json, t);
}
