/* SPDX-License-Identifier: Apache-2.0 */
/* fluidctl inspect: a service instance's topology on one cloud, as a table or as the proto
 * Topology message (--json, validated before it is printed). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudcmd.h"
#include "cmd.h"
#include "fluid/cleanup.h"
#include "fluid/cloud/config.h"
#include "fluid/cloud/topology.h"
#include "fluid/error.h"
#include "fluid/msg.h"

static const char usage_text[] =
    "usage: fluidctl inspect --cloud NAME (--server NAME|ID ... | --tag TAG | --all) [--json]\n"
    "  --cloud NAME     the cloud, by its clouds.yaml name (or OS_CLOUD / OS_* variables)\n"
    "  --server X       a server by name or id (repeatable)\n"
    "  --tag TAG        the servers with this tag\n"
    "  --all            every server of the project\n"
    "  --json           the fluid.topology/1 message instead of the table\n";

fc_rc
fc_ctl_cloud_open(const char *name, struct fc_os **out)
{
    struct fc_cloud_config *c = NULL;
    fc_rc rc = fc_cloud_config_load(name, NULL, NULL, NULL, NULL, &c);
    if (rc)
        return rc;
    rc = fc_os_open(c, out);
    fc_cloud_config_free(c);
    return rc;
}

static const char *
s_(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "-";
}

static long long
i_(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static const char *
name_of(const json_t *topo, const char *list, const char *id)
{
    const json_t *e = fc_json_find(json_object_get(topo, list), "id", id);
    const char *n = e ? json_string_value(json_object_get(e, "name")) : NULL;
    return n && *n ? n : id;
}

static void
print_rule(FILE *f, const json_t *topo, const json_t *r)
{
    const json_t *pmin = json_object_get(r, "port_range_min");
    const json_t *pmax = json_object_get(r, "port_range_max");
    char ports[48] = "";
    if (json_is_integer(pmin))
        snprintf(ports, sizeof ports, " %lld-%lld", (long long)json_integer_value(pmin),
                 json_is_integer(pmax) ? (long long)json_integer_value(pmax)
                                       : (long long)json_integer_value(pmin));
    const char *rg = json_string_value(json_object_get(r, "remote_group_id"));
    const char *rip = json_string_value(json_object_get(r, "remote_ip_prefix"));
    fprintf(f, "    %-7s %-4s %-5s%s %s %s\n", s_(r, "direction"), s_(r, "ethertype"),
            json_string_value(json_object_get(r, "protocol")) ? s_(r, "protocol") : "any",
            ports, rg ? "group" : rip ? "from" : "from",
            rg ? name_of(topo, "security_groups", rg) : rip ? rip : "anywhere");
}

void
fc_ctl_topology_print(FILE *f, const json_t *t, const json_t *warnings)
{
    size_t i, j;
    json_t *s, *e;
    const json_t *servers = json_object_get(t, "servers");
    fprintf(f, "cloud %s, project %s: %zu server%s\n", s_(t, "cloud"), s_(t, "project_id"),
            json_array_size(servers), json_array_size(servers) == 1 ? "" : "s");
    json_array_foreach(servers, i, s) {
        fprintf(f, "\nSERVER %s (%s) %s\n", s_(s, "name"), s_(s, "id"), s_(s, "status"));
        const json_t *fl = fc_json_find(json_object_get(t, "flavors"), "id", s_(s, "flavor_id"));
        if (fl) {
            fprintf(f, "  flavor    %s: %lld vCPU, %lld MiB RAM, %lld GiB disk", s_(fl, "name"),
                    i_(fl, "vcpus"), i_(fl, "ram_mb"), i_(fl, "disk_gb"));
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(fl, "extra_specs"), k, v)
                fprintf(f, ", %s=%s", k, json_string_value(v));
            fputc('\n', f);
        }
        if (json_string_value(json_object_get(s, "image_id"))) {
            const json_t *im = fc_json_find(json_object_get(t, "images"), "id", s_(s, "image_id"));
            fprintf(f, "  image     %s (%s)%s%s\n", im ? s_(im, "name") : "(not visible)",
                    s_(s, "image_id"), im ? " " : "", im ? s_(im, "disk_format") : "");
        } else {
            fprintf(f, "  boot      volume %s\n", s_(s, "boot_volume_id"));
        }
        if (json_string_value(json_object_get(s, "key_name"))) {
            const json_t *kp = fc_json_find(json_object_get(t, "keypairs"), "name", s_(s, "key_name"));
            const char *pk = kp ? json_string_value(json_object_get(kp, "public_key")) : NULL;
            fprintf(f, "  keypair   %s  %.40s%s\n", s_(s, "key_name"), pk ? pk : "(public key not readable)",
                    pk && strlen(pk) > 40 ? "..." : "");
        }
        json_array_foreach(json_object_get(s, "port_ids"), j, e) {
            const json_t *p = fc_json_find(json_object_get(t, "ports"), "id", json_string_value(e));
            if (!p)
                continue;
            fprintf(f, "  port      %s on %s, MAC %s", s_(p, "id"),
                    name_of(t, "networks", s_(p, "network_id")), s_(p, "mac_address"));
            size_t k;
            json_t *ip;
            json_array_foreach(json_object_get(p, "fixed_ips"), k, ip)
                fprintf(f, ", %s", s_(ip, "ip_address"));
            json_t *fip;
            json_array_foreach(json_object_get(t, "floating_ips"), k, fip)
                if (strcmp(s_(fip, "port_id"), s_(p, "id")) == 0)
                    fprintf(f, ", floating %s", s_(fip, "floating_ip_address"));
            fputc('\n', f);
        }
        fprintf(f, "  groups   ");
        json_array_foreach(json_object_get(s, "security_groups"), j, e)
            fprintf(f, " %s", name_of(t, "security_groups", json_string_value(e)));
        fputc('\n', f);
        json_array_foreach(json_object_get(s, "volume_attachments"), j, e) {
            const json_t *v = fc_json_find(json_object_get(t, "volumes"), "id", s_(e, "volume_id"));
            fprintf(f, "  volume    %s (%s) at %s", v ? s_(v, "name") : "?", s_(e, "volume_id"),
                    s_(e, "device"));
            if (v)
                fprintf(f, ": %lld GiB, type %s%s", i_(v, "size_gb"), s_(v, "volume_type"),
                        json_is_true(json_object_get(v, "bootable")) ? ", bootable" : "");
            fputc('\n', f);
        }
        const char *k;
        json_t *v;
        if (json_object_size(json_object_get(s, "metadata"))) {
            fprintf(f, "  metadata ");
            json_object_foreach(json_object_get(s, "metadata"), k, v)
                fprintf(f, " %s=%s", k, json_string_value(v));
            fputc('\n', f);
        }
        if (json_array_size(json_object_get(s, "tags"))) {
            fprintf(f, "  tags     ");
            json_array_foreach(json_object_get(s, "tags"), j, e) fprintf(f, " %s", json_string_value(e));
            fputc('\n', f);
        }
    }
    json_array_foreach(json_object_get(t, "security_groups"), i, s) {
        fprintf(f, "\nSECURITY GROUP %s (%s)\n", s_(s, "name"), s_(s, "id"));
        json_array_foreach(json_object_get(s, "rules"), j, e) print_rule(f, t, e);
    }
    if (json_array_size(json_object_get(t, "networks")))
        fputc('\n', f);
    json_array_foreach(json_object_get(t, "networks"), i, s) {
        fprintf(f, "NETWORK %s (%s)%s\n", s_(s, "name"), s_(s, "id"),
                json_is_true(json_object_get(s, "external")) ? " external" : "");
        json_array_foreach(json_object_get(t, "subnets"), j, e)
            if (strcmp(s_(e, "network_id"), s_(s, "id")) == 0)
                fprintf(f, "  subnet %s %s gateway %s%s\n", s_(e, "name"), s_(e, "cidr"),
                        s_(e, "gateway_ip"),
                        json_is_true(json_object_get(e, "enable_dhcp")) ? ", DHCP" : "");
    }
    json_array_foreach(json_object_get(t, "routers"), i, s) {
        fprintf(f, "ROUTER %s (%s) gateway %s", s_(s, "name"), s_(s, "id"),
                json_string_value(json_object_get(s, "external_network_id"))
                    ? name_of(t, "networks", s_(s, "external_network_id")) : "none");
        json_array_foreach(json_object_get(s, "interfaces"), j, e)
            fprintf(f, ", %s on %s", s_(e, "ip_address"), name_of(t, "subnets", s_(e, "subnet_id")));
        fputc('\n', f);
    }
    if (json_array_size(warnings)) {
        fprintf(f, "\nWARNINGS\n");
        json_array_foreach(warnings, i, e) fprintf(f, "  %s\n", s_(e, "reason"));
    }
}

int
fc_ctl_inspect(int argc, char **argv)
{
    static const struct option lo[] = {
        {"cloud", required_argument, NULL, 'c'}, {"server", required_argument, NULL, 's'},
        {"tag", required_argument, NULL, 't'},   {"all", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cloud = NULL;
    FC_AUTOFREE const char **servers = calloc((size_t)argc + 1, sizeof *servers);
    struct fc_selector sel = {.servers = servers};
    bool json = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:s:t:ajh", lo, NULL)) != -1) {
        switch (ch) {
        case 'c': cloud = optarg; break;
        case 's': servers[sel.nservers++] = optarg; break;
        case 't': sel.tag = optarg; break;
        case 'a': sel.all = true; break;
        case 'j': json = true; break;
        case 'h': fputs(usage_text, stdout); return FC_CTL_OK;
        default: fputs(usage_text, stderr); return FC_CTL_USAGE;
        }
    }
    if (optind != argc || (!!sel.nservers + !!sel.tag + sel.all) != 1) {
        fprintf(stderr, "fluidctl inspect: give exactly one of --server, --tag, --all\n");
        fputs(usage_text, stderr);
        return FC_CTL_USAGE;
    }
    struct fc_os *os = NULL;
    fc_rc rc = fc_ctl_cloud_open(cloud, &os);
    if (rc)
        return fc_ctl_fail("inspect", rc);
    json_auto_t *topo = NULL, *warnings = NULL;
    rc = fc_topology_inspect(os, &sel, &topo, &warnings);
    fc_os_close(os);
    if (rc)
        return fc_ctl_fail("inspect", rc);
    if (!json) {
        fc_ctl_topology_print(stdout, topo, warnings);
        return FC_CTL_OK;
    }
    FC_AUTO(topology) struct fc_topology *valid = NULL;
    if ((rc = fc_topology_from_json(topo, &valid))) {
        fc_error_prefix("the topology does not validate (a bug)");
        return fc_ctl_fail("inspect", FC_E_INTERNAL);
    }
    FC_AUTOFREE char *text = json_dumps(topo, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text)
        return fc_ctl_fail("inspect", FC_ERR(FC_E_NOMEM, "out of memory"));
    puts(text);
    return FC_CTL_OK;
}
