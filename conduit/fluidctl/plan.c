/* SPDX-License-Identifier: Apache-2.0 */
/* fluidctl plan: inspects the source, reads the target (reads only: neither cloud changes)
 * and prints the plan the conduit would run: tasks in order, what is created on the target
 * under which names (or reused), and what cannot be carried over and why. --json prints the
 * fluid.plan/1 message, --json-report the report beside it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudcmd.h"
#include "cmd.h"
#include "fluid/cleanup.h"
#include "fluid/cloud/plan.h"
#include "fluid/cloud/topology.h"
#include "fluid/error.h"
#include "fluid/msg.h"

static const char usage_text[] =
    "usage: fluidctl plan --from SRC --to DST (--server NAME|ID ... | --tag TAG | --all)\n"
    "                     [--relocation-id ID] [--disk-format FMT] [--rules FILE]\n"
    "                     [--exact-flavor] [--json | --json-report]\n"
    "  --from, --to        the clouds, by their clouds.yaml names\n"
    "  --server, --tag, --all   which servers of SRC (as for inspect)\n"
    "  --relocation-id ID  names derive from it (default: derived from clouds and servers)\n"
    "  --disk-format FMT   image format wanted on the target (default: the source's, when\n"
    "                      the target accepts it, else qcow2)\n"
    "  --rules FILE        config rewrite rules (fluid-config) for each server\n"
    "  --exact-flavor      refuse a closest-fitting flavor: same name and size only\n"
    "  --json              the fluid.plan/1 message\n"
    "  --json-report       {\"plan\": ..., \"report\": {creates, unmappable, notes}}\n";

static void
print_plan(FILE *f, const json_t *plan, const json_t *rep)
{
    FC_AUTO(plan) struct fc_plan *p = NULL;
    if (fc_plan_from_json(plan, &p))
        return;
    size_t n = p->ntasks, *order = calloc(n ? n : 1, sizeof *order);
    if (!order)
        return;
    fc_plan_topo_order(p, order);
    fprintf(f, "relocation %s: %s -> %s, %zu tasks\n\nTASKS (in an order that respects "
               "their dependencies)\n",
            p->relocation_id, json_string_value(json_object_get(rep, "source")),
            json_string_value(json_object_get(rep, "target")), n);
    for (size_t i = 0; i < n; i++) {
        const struct fc_task *t = p->tasks[order[i]];
        fprintf(f, "  %-26s", t->task_id);
        for (size_t s = 0; s < t->nstages; s++) {
            fprintf(f, "%s%s", s ? " | " : "", t->stages[s].kind);
            if (t->stages[s].nargs)
                fprintf(f, " %s", t->stages[s].args[0]);
        }
        if (t->ndepends) {
            fprintf(f, "  after");
            for (size_t d = 0; d < t->ndepends; d++)
                fprintf(f, " %s", t->depends_on[d]);
        }
        fputc('\n', f);
    }
    free(order);
    size_t i;
    json_t *e;
    fprintf(f, "\nCREATED (or reused, when an earlier run made it)\n");
    json_array_foreach(json_object_get(rep, "creates"), i, e)
        fprintf(f, "  %-6s %-15s %-40s from %s (%s)\n",
                json_string_value(json_object_get(e, "action")),
                json_string_value(json_object_get(e, "kind")),
                json_string_value(json_object_get(e, "target_name")),
                json_string_value(json_object_get(e, "source_name"))
                    ? json_string_value(json_object_get(e, "source_name")) : "-",
                strcmp(json_string_value(json_object_get(e, "cloud")), "source") == 0
                    ? "on the source" : "on the target");
    if (json_array_size(json_object_get(rep, "unmappable"))) {
        fprintf(f, "\nCANNOT BE CARRIED OVER\n");
        json_array_foreach(json_object_get(rep, "unmappable"), i, e)
            fprintf(f, "  %s %s: %s\n", json_string_value(json_object_get(e, "kind")),
                    json_string_value(json_object_get(e, "name"))
                        ? json_string_value(json_object_get(e, "name"))
                        : json_string_value(json_object_get(e, "id")),
                    json_string_value(json_object_get(e, "reason")));
    }
    if (json_array_size(json_object_get(rep, "notes"))) {
        fprintf(f, "\nNOTES\n");
        json_array_foreach(json_object_get(rep, "notes"), i, e)
            fprintf(f, "  %s\n", json_string_value(json_object_get(e, "note")));
    }
}

int
fc_ctl_plan(int argc, char **argv)
{
    static const struct option lo[] = {
        {"from", required_argument, NULL, 'f'},   {"to", required_argument, NULL, 't'},
        {"server", required_argument, NULL, 's'}, {"tag", required_argument, NULL, 'g'},
        {"all", no_argument, NULL, 'a'},          {"relocation-id", required_argument, NULL, 'r'},
        {"disk-format", required_argument, NULL, 'd'}, {"rules", required_argument, NULL, 'R'},
        {"exact-flavor", no_argument, NULL, 'e'}, {"json", no_argument, NULL, 'j'},
        {"json-report", no_argument, NULL, 'J'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct fc_plan_opts o = {0};
    FC_AUTOFREE const char **servers = calloc((size_t)argc + 1, sizeof *servers);
    struct fc_selector sel = {.servers = servers};
    int json = 0, ch;
    while ((ch = getopt_long(argc, argv, "f:t:s:g:ar:d:R:ejJh", lo, NULL)) != -1) {
        switch (ch) {
        case 'f': o.src_cloud = optarg; break;
        case 't': o.dst_cloud = optarg; break;
        case 's': servers[sel.nservers++] = optarg; break;
        case 'g': sel.tag = optarg; break;
        case 'a': sel.all = true; break;
        case 'r': o.relocation_id = optarg; break;
        case 'd': o.disk_format = optarg; break;
        case 'R': o.rules = optarg; break;
        case 'e': o.exact_flavor = true; break;
        case 'j': json = 1; break;
        case 'J': json = 2; break;
        case 'h': fputs(usage_text, stdout); return FC_CTL_OK;
        default: fputs(usage_text, stderr); return FC_CTL_USAGE;
        }
    }
    if (optind != argc || !o.src_cloud || !o.dst_cloud ||
        (!!sel.nservers + !!sel.tag + sel.all) != 1) {
        fprintf(stderr, "fluidctl plan: --from, --to and one of --server, --tag, --all are "
                        "needed\n");
        fputs(usage_text, stderr);
        return FC_CTL_USAGE;
    }
    struct fc_os *src = NULL, *dst = NULL;
    json_auto_t *topo = NULL, *target = NULL, *plan = NULL, *rep = NULL;
    fc_rc rc = fc_ctl_cloud_open(o.src_cloud, &src);
    if (!rc)
        rc = fc_topology_inspect(src, &sel, &topo, NULL);
    fc_os_close(src);
    if (!rc)
        rc = fc_ctl_cloud_open(o.dst_cloud, &dst);
    if (!rc)
        rc = fc_plan_read_target(dst, &target);
    fc_os_close(dst);
    if (!rc)
        rc = fc_plan_build(topo, target, &o, &plan, &rep);
    if (rc)
        return fc_ctl_fail("plan", rc);
    if (!json) {
        print_plan(stdout, plan, rep);
        return FC_CTL_OK;
    }
    json_auto_t *both = json_pack("{s:O, s:O}", "plan", plan, "report", rep);
    FC_AUTOFREE char *text = json_dumps(json == 1 ? plan : both, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text)
        return fc_ctl_fail("plan", FC_ERR(FC_E_NOMEM, "out of memory"));
    puts(text);
    return FC_CTL_OK;
}
