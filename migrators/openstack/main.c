/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-openstack: the cloud-action migrator. One program, one subcommand per action
 * (snapshot, image-*, keypair-import, secgroup-*, server-create, floating-ip, network-,
 * subnet-, router-create), run by hand or by the broker. Every action is idempotent: what
 * it creates carries the relocation id and is found and reused by a re-run. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fluid/cleanup.h"
#include "fluid/cloud/config.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/msg.h"
#include "osa.h"

static const struct osa_opt snapshot_opts[] = {
    {"server", OSA_VAL}, {"name", OSA_VAL}, {"test-upload", OSA_VAL}, {NULL, 0}};
static const struct osa_opt export_opts[] = {
    {"image-name", OSA_VAL}, {"image", OSA_VAL}, {"framed", OSA_FLAG}, {"plain", OSA_FLAG},
    {"test-drop-at", OSA_VAL}, {NULL, 0}};
static const struct osa_opt import_opts[] = {
    {"name", OSA_VAL}, {"disk-format", OSA_VAL}, {"container-format", OSA_VAL},
    {"min-disk", OSA_VAL}, {"min-ram", OSA_VAL}, {NULL, 0}};
static const struct osa_opt keypair_opts[] = {
    {"name", OSA_VAL}, {"public-key", OSA_VAL}, {"public-key-file", OSA_VAL}, {NULL, 0}};
static const struct osa_opt sg_opts[] = {{"name", OSA_VAL}, {"description", OSA_VAL}, {NULL, 0}};
static const struct osa_opt rules_opts[] = {{"group", OSA_VAL}, {"rule", OSA_LIST}, {NULL, 0}};
static const struct osa_opt fip_opts[] = {
    {"server", OSA_VAL}, {"fixed-ip", OSA_VAL}, {"external-network", OSA_VAL},
    {"description", OSA_VAL}, {NULL, 0}};
static const struct osa_opt server_opts[] = {
    {"name", OSA_VAL}, {"flavor", OSA_VAL}, {"image", OSA_VAL}, {"boot-volume", OSA_VAL},
    {"key-name", OSA_VAL}, {"security-group", OSA_LIST}, {"port", OSA_LIST},
    {"metadata-json", OSA_VAL}, {"tags-json", OSA_VAL}, {NULL, 0}};

static const struct osa_opt net_opts[] = {{"name", OSA_VAL}, {"mtu", OSA_VAL}, {NULL, 0}};
static const struct osa_opt subnet_opts[] = {
    {"network", OSA_VAL}, {"name", OSA_VAL}, {"cidr", OSA_VAL}, {"ip-version", OSA_VAL},
    {"gateway", OSA_VAL}, {"dhcp", OSA_FLAG}, {"no-dhcp", OSA_FLAG}, {"dns", OSA_LIST},
    {"pool", OSA_LIST}, {NULL, 0}};
static const struct osa_opt router_opts[] = {
    {"name", OSA_VAL}, {"external-network", OSA_VAL}, {"subnet", OSA_LIST}, {NULL, 0}};

static const struct osa_opt vexp_opts[] = {
    {"volume", OSA_VAL}, {"image-name", OSA_VAL}, {"force", OSA_FLAG}, {"framed", OSA_FLAG},
    {"plain", OSA_FLAG}, {NULL, 0}};
static const struct osa_opt vimp_opts[] = {
    {"name", OSA_VAL}, {"size", OSA_VAL}, {"disk-format", OSA_VAL}, {"volume-type", OSA_VAL},
    {"bootable", OSA_FLAG}, {NULL, 0}};
static const struct osa_opt vsr_opts[] = {
    {"volume", OSA_VAL}, {"framed", OSA_FLAG}, {"plain", OSA_FLAG}, {NULL, 0}};
static const struct osa_opt vsw_opts[] = {
    {"name", OSA_VAL}, {"size", OSA_VAL}, {"volume-type", OSA_VAL}, {"bootable", OSA_FLAG},
    {NULL, 0}};
static const struct osa_opt cfg_opts[] = {
    {"server", OSA_VAL}, {"rules", OSA_VAL}, {"host", OSA_VAL}, {"ssh-user", OSA_VAL},
    {"ssh-port", OSA_VAL}, {"identity", OSA_VAL}, {"known-hosts", OSA_VAL},
    {"vars-json", OSA_LIST}, {"rules-json", OSA_LIST}, {"dry-run", OSA_FLAG}, {NULL, 0}};
static const struct osa_opt vatt_opts[] = {
    {"server", OSA_VAL}, {"volume", OSA_VAL}, {"device", OSA_VAL}, {NULL, 0}};

const struct osa_action osa_actions[] = {
    {"snapshot", "image of a server (createImage), waited for until active", snapshot_opts,
     osa_snapshot, false},
    {"image-export", "an image's data from Glance to stdout (framed or plain)", export_opts,
     osa_image_export, true},
    {"image-import", "stdin into a new Glance image, streamed (chunked upload)", import_opts,
     osa_image_import, false},
    {"keypair-import", "a keypair from its public key", keypair_opts, osa_keypair_import, false},
    {"secgroup-create", "a security group (without rules)", sg_opts, osa_secgroup_create, false},
    {"secgroup-rules", "rules added to a security group", rules_opts, osa_secgroup_rules, false},
    {"server-create", "a server: flavor, image, ports with fixed IPs, metadata, tags",
     server_opts, osa_server_create, false},
    {"floating-ip", "a floating IP allocated and associated with a server", fip_opts,
     osa_floating_ip, false},
    {"network-create", "a project network", net_opts, osa_network_create, false},
    {"subnet-create", "a subnet (CIDR, gateway, DHCP, DNS, pools)", subnet_opts,
     osa_subnet_create, false},
    {"router-create", "a router, its external gateway and interfaces", router_opts,
     osa_router_create, false},
    {"volume-export", "a volume's data to stdout through Cinder upload-to-image", vexp_opts,
     osa_volume_export, true},
    {"volume-import", "stdin into an image, then a volume made from it", vimp_opts,
     osa_volume_import, false},
    {"volume-ssh-read", "a volume's backend file read over SSH (storage_ssh) to stdout",
     vsr_opts, osa_volume_ssh_read, true},
    {"volume-ssh-write", "an empty volume made, stdin written into its backend file over SSH",
     vsw_opts, osa_volume_ssh_write, false},
    {"config-rewrite", "fluid-config over SFTP on a relocated server, with its new addresses",
     cfg_opts, osa_config_rewrite, false},
    {"volume-attach", "a volume attached to a server (at the device asked)", vatt_opts,
     osa_volume_attach, false},
    {NULL, NULL, NULL, NULL, false}};

static const struct osa_opt common_opts[] = {
    {"cloud", OSA_VAL}, {"relocation-id", OSA_VAL}, {"timeout", OSA_VAL},
    {"max-rate", OSA_VAL}, {NULL, 0}};

static void
usage(FILE *f)
{
    fprintf(f, "usage: fluid-openstack ACTION --cloud NAME [--relocation-id ID] "
               "[--timeout S] [--max-rate BYTES] [options]\nactions:\n");
    for (const struct osa_action *x = osa_actions; x->name; x++)
        fprintf(f, "  %-16s %s\n", x->name, x->summary);
    fprintf(f, "see fluid-openstack(1)\n");
}

static void
print_opts(const struct osa_opt *t)
{
    for (; t->name; t++)
        printf("  --%s%s\n", t->name,
               t->kind == OSA_FLAG ? "" : t->kind == OSA_LIST ? " VALUE (repeatable)" : " VALUE");
}

/* ACTION --help: every option the action takes (a test checks each is in the man page). */
static void
action_help(const struct osa_action *act)
{
    printf("usage: fluid-openstack %s [options]: %s\noptions:\n", act->name, act->summary);
    print_opts(act->opts);
    print_opts(common_opts);
}

static const struct osa_opt *
find_opt(const struct osa_opt *t, const char *name)
{
    for (; t && t->name; t++)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

/* "--key value" / "--key=value" / "--flag", checked against the action's table. */
static fc_rc
parse_args(const struct osa_action *act, int argc, char **argv, json_t *out)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || !arg[2])
            return FC_ERR(FC_E_INVALID, "%s: argument %d: unexpected \"%.64s\" (options "
                          "are --name value)", act->name, i + 2, arg);
        char name[64];
        const char *eq = strchr(arg + 2, '='), *val = NULL;
        size_t nl = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (nl >= sizeof name)
            return FC_ERR(FC_E_INVALID, "%s: argument %d: option name too long", act->name,
                          i + 2);
        memcpy(name, arg + 2, nl);
        name[nl] = '\0';
        const struct osa_opt *o = find_opt(act->opts, name);
        if (!o)
            o = find_opt(common_opts, name);
        if (!o)
            return FC_ERR(FC_E_INVALID, "%s: argument %d: unknown option --%s", act->name,
                          i + 2, name);
        if (o->kind == OSA_FLAG) {
            if (eq)
                return FC_ERR(FC_E_INVALID, "%s: --%s takes no value", act->name, name);
            json_object_set_new(out, name, json_true());
            continue;
        }
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return FC_ERR(FC_E_INVALID, "%s: --%s needs a value", act->name, name);
        json_t *s = json_string(val);
        if (!s)
            return FC_ERR(FC_E_INVALID, "%s: --%s: value is not UTF-8", act->name, name);
        if (o->kind == OSA_LIST) {
            json_t *l = json_object_get(out, name);
            if (!l)
                json_object_set_new(out, name, l = json_array());
            json_array_append_new(l, s);
        } else {
            if (json_object_get(out, name)) {
                json_decref(s);
                return FC_ERR(FC_E_INVALID, "%s: --%s given twice", act->name, name);
            }
            json_object_set_new(out, name, s);
        }
    }
    return FC_OK;
}

/* "--max-rate 50M": bytes per second, with an optional k, M or G (powers of 1024). */
static fc_rc
parse_rate(const char *action, const char *t, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(t, &end, 10);
    unsigned shift = 0;
    if (end != t && (*end == 'k' || *end == 'K'))
        shift = 10, end++;
    else if (end != t && *end == 'M')
        shift = 20, end++;
    else if (end != t && *end == 'G')
        shift = 30, end++;
    if (errno || end == t || *end || t[0] == '-' || v == 0 || v > (UINT64_MAX >> 30))
        return FC_ERR(FC_E_INVALID, "%s: --max-rate: \"%.32s\" is not a rate in bytes per "
                      "second (a positive number, optionally followed by k, M or G)", action, t);
    *out = (uint64_t)v << shift;
    return FC_OK;
}

static fc_rc
open_cloud(struct osa *a, uint64_t max_rate)
{
    fc_rc rc = fc_cloud_config_load(a->cloud, NULL, NULL, NULL, NULL, &a->cfg);
    if (rc == FC_OK)
        rc = fc_os_open(a->cfg, &a->os);
    if (rc == FC_OK)
        fc_os_set_max_rate(a->os, max_rate);
    if (rc == FC_OK)
        fc_os_set_cancel(a->os, &fc_cancel_requested);
    if (rc == FC_OK)
        rc = fc_os_authenticate(a->os);
    return rc;
}

static fc_rc
run(struct fc_migrator *m, int argc, char **argv, bool *data_out)
{
    if (argc < 2)
        return usage(stderr), FC_ERR(FC_E_INVALID, "no action given");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return FC_OK;
    }
    const struct osa_action *act = osa_actions;
    while (act->name && strcmp(act->name, argv[1]) != 0)
        act++;
    if (!act->name)
        return usage(stderr), FC_ERR(FC_E_INVALID, "unknown action \"%.64s\"", argv[1]);
    *data_out = act->data_out;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            action_help(act);
            return FC_OK;
        }
    }
    json_auto_t *args = json_object();
    fc_rc rc = parse_args(act, argc - 2, argv + 2, args);
    if (rc)
        return rc;
    struct osa a = {.m = m, .action = act->name, .args = args, .timeout_s = 1800};
    if ((rc = osa_need(&a, "cloud", &a.cloud)))
        return rc;
    a.rid = osa_str(&a, "relocation-id");
    if (!a.rid)
        a.rid = m->relocation_id;
    if (!a.rid || !*a.rid)
        return FC_ERR(FC_E_INVALID, "%s: no relocation id: give --relocation-id ID (the "
                      "broker's task carries one)", act->name);
    if (!fc_id_valid(a.rid))
        return FC_ERR(FC_E_INVALID, "%s: --relocation-id: \"%.64s\" is not a valid id",
                      act->name, a.rid);
    const char *t = osa_str(&a, "timeout");
    if (t) {
        char *end;
        unsigned long v = strtoul(t, &end, 10);
        if (*end || end == t || v == 0 || v > 86400)
            return FC_ERR(FC_E_INVALID, "%s: --timeout: \"%.32s\" is not 1..86400 seconds",
                          act->name, t);
        a.timeout_s = (unsigned)v;
    }
    uint64_t max_rate = 0;
    const char *mr = osa_str(&a, "max-rate");
    if (mr && (rc = parse_rate(act->name, mr, &max_rate)) != FC_OK)
        return rc;
    a.result = json_pack("{s:s,s:s,s:s,s:[]}", "action", act->name, "cloud", a.cloud,
                         "relocation_id", a.rid, "resources");
    if ((rc = open_cloud(&a, max_rate)) == FC_OK)
        rc = act->run(&a);
    fc_os_close(a.os);
    fc_cloud_config_free(a.cfg);
    if (rc) {
        json_decref(a.result);
        return rc;
    }
    fc_log(FC_INFO, FC_MSG("action done"), FC_STR("action", act->name),
           FC_STR("cloud", a.cloud));
    if (m->events_fd < 0) {
        /* by hand: the result on stdout, or stderr when stdout carries data */
        char *s = json_dumps(a.result, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(act->data_out ? stderr : stdout, "%s\n", s ? s : "{}");
        free(s);
    }
    fc_event_done(m, a.result);
    return FC_OK;
}

int
main(int argc, char **argv)
{
    struct fc_migrator m;
    fc_rc rc = fc_migrator_init(&m, "fluid-openstack", &argc, argv);
    if (rc != FC_OK)
        return fc_migrator_finish(&m, rc);
    bool data_out = false;
    rc = run(&m, argc, argv, &data_out);
    return fc_migrator_finish(&m, rc);
}
