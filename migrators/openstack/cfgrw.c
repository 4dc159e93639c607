/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-openstack config-rewrite: the relocation's variables completed at run time (each
 * relocated server's new fixed and floating addresses and id, each volume's id and device,
 * read from the target cloud) and fluid-config run over SFTP on the relocated server with
 * them and the request's rules. The variable names are in docs/cloud-actions.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/stream.h"
#include "hostkeys.h"
#include "osa.h"

/* A JSON object given in parts (--vars-json, --rules-json): the parts joined and parsed;
 * none: an empty object. */
static fc_rc
joined_json(struct osa *a, const char *opt, json_t **out)
{
    const json_t *parts = osa_list(a, opt);
    size_t i, n = 0;
    json_t *p;
    json_array_foreach(parts, i, p) n += json_string_length(p);
    char *js = malloc(n + 1);
    if (!js)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    n = 0;
    json_array_foreach(parts, i, p) {
        memcpy(js + n, json_string_value(p), json_string_length(p));
        n += json_string_length(p);
    }
    js[n] = '\0';
    json_error_t je;
    *out = n ? json_loads(js, JSON_REJECT_DUPLICATES, &je) : json_object();
    free(js);
    if (!*out || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return FC_ERR(FC_E_INVALID, "%s: --%s: not a JSON object (%.80s)", a->action, opt,
                      n ? je.text : "");
    }
    return FC_OK;
}

static fc_rc
planned_vars(struct osa *a, json_t **out)
{
    return joined_json(a, "vars-json", out);
}

/* vars.target.server.<name>: id, fixed and floating addresses of the relocated server
 * named planned["name"], from Neutron (its ports and their floating IPs). */
static fc_rc
server_addresses(struct osa *a, json_t *sv)
{
    const char *tn = osa_js(sv, "name");
    if (!tn)
        return FC_ERR(FC_E_INVALID, "%s: a planned server has no target name", a->action);
    char q[600], path[900];
    json_t *srv = NULL, *ports = NULL;
    fc_rc rc = osa_q(tn, q, sizeof q);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "/servers/detail?name=%s", q);
    if ((rc = osa_find_one(a, FC_SVC_COMPUTE, path, "servers", tn, "server", &srv)))
        return rc;
    const char *sid = osa_js(srv, "id");
    json_object_set_new(sv, "id", json_string(sid));
    snprintf(path, sizeof path, "/ports?device_id=%s", sid);
    if ((rc = fc_os_list(a->os, FC_SVC_NETWORK, path, "ports", 0, &ports)))
        goto out;
    json_t *fixed = json_array(), *floating = json_array();
    json_object_set_new(sv, "fixed_ips", fixed);
    json_object_set_new(sv, "floating_ips", floating);
    size_t i, j;
    json_t *p, *ip;
    json_array_foreach(ports, i, p) {
        json_array_foreach(json_object_get(p, "fixed_ips"), j, ip)
            if (osa_js(ip, "ip_address"))
                json_array_append_new(fixed, json_string(osa_js(ip, "ip_address")));
        json_t *fips = NULL;
        snprintf(path, sizeof path, "/floatingips?port_id=%s", osa_js(p, "id"));
        if ((rc = fc_os_list(a->os, FC_SVC_NETWORK, path, "floatingips", 0, &fips)))
            goto out;
        json_array_foreach(fips, j, ip)
            if (osa_js(ip, "floating_ip_address"))
                json_array_append_new(floating, json_string(osa_js(ip, "floating_ip_address")));
        json_decref(fips);
    }
    json_object_del(sv, "fixed_ip");
    json_object_del(sv, "floating_ip");
    if (json_array_size(fixed))
        json_object_set(sv, "fixed_ip", json_array_get(fixed, 0));
    if (json_array_size(floating))
        json_object_set(sv, "floating_ip", json_array_get(floating, 0));
out:
    json_decref(srv);
    json_decref(ports);
    return rc;
}

/* vars.target.volume.<name>: id and the device it is attached at on the target. */
static fc_rc
volume_facts(struct osa *a, json_t *vv)
{
    json_t *vol = NULL;
    const char *tn = osa_js(vv, "name");
    fc_rc rc = tn ? osa_find_volume(a, tn, &vol)
                  : FC_ERR(FC_E_INVALID, "%s: a planned volume has no name", a->action);
    if (rc)
        return rc;
    json_object_set_new(vv, "id", json_string(osa_js(vol, "id")));
    const char *dev = osa_js(json_array_get(json_object_get(vol, "attachments"), 0), "device");
    if (dev)
        json_object_set_new(vv, "device", json_string(dev));
    json_decref(vol);
    return FC_OK;
}

/* The rules' roots (the rules read here only for them; fluid-config reads them again):
 * from --rules FILE, or from the document given inline (--rules-json parts: *doc gets it). */
static fc_rc
rules_roots(struct osa *a, const char *file, json_t **roots, json_t **doc)
{
    json_error_t je;
    json_t *r = NULL;
    *doc = NULL;
    if (!file) {
        fc_rc rc = joined_json(a, "rules-json", &r);
        if (rc)
            return rc;
        file = "(--rules-json)";
        *doc = json_incref(r);
    } else if (!(r = json_load_file(file, JSON_REJECT_DUPLICATES, &je))) {
        return FC_ERR(FC_E_INVALID, "%s: --rules %s: line %d: %s", a->action, file, je.line,
                      je.text);
    }
    json_t *ro = json_object_get(r, "roots");
    size_t i;
    json_t *x;
    fc_rc rc = json_array_size(ro) ? FC_OK
                                   : FC_ERR(FC_E_INVALID, "%s: --rules %s: no \"roots\"",
                                            a->action, file);
    json_array_foreach(ro, i, x) {
        const char *s = json_string_value(x);
        if (rc == FC_OK && (!s || s[0] != '/' || strstr(s, "${")))
            rc = FC_ERR(FC_E_INVALID, "%s: --rules %s: roots[%zu]: an absolute path without "
                        "variables expected (the relocation's targets are its roots)",
                        a->action, file, i);
    }
    if (rc == FC_OK)
        *roots = json_incref(ro);
    json_decref(r);
    return rc;
}

/* An fd holding text (a memfd: fluid-config opens it as /dev/fd/N). */
static int
text_fd(const char *name, const char *text)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fc_write_all(fd, text, strlen(text)) != FC_OK) {
        close(fd);
        return -1;
    }
    return fd;
}

fc_rc
osa_config_rewrite(struct osa *a)
{
    const char *self, *rules = osa_str(a, "rules"), *how = osa_str(a, "host");
    fc_rc rc;
    if ((rc = osa_need(a, "server", &self)))
        return rc;
    if (!rules == !json_array_size(osa_list(a, "rules-json")))
        return FC_ERR(FC_E_INVALID, "%s: give the rules with one of --rules FILE or "
                      "--rules-json DOC", a->action);
    json_t *vars = NULL, *roots = NULL, *res = NULL, *doc = NULL;
    char *js = NULL, *rs = NULL;
    int vfd = -1, khfd = -1, rfd = -1;
    if ((rc = planned_vars(a, &vars)) || (rc = rules_roots(a, rules, &roots, &doc)))
        goto out;
    json_t *tsrv = json_object_get(json_object_get(vars, "target"), "server");
    json_t *tvol = json_object_get(json_object_get(vars, "target"), "volume");
    json_t *ssrv = json_object_get(json_object_get(vars, "source"), "server");
    if (!json_object_get(tsrv, self)) {
        rc = FC_ERR(FC_E_INVALID, "%s: server '%.100s' is not among the relocation's servers "
                    "(target.server)", a->action, self);
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(tsrv, k, v) {
        if ((rc = server_addresses(a, v)))
            goto out;
    }
    json_object_foreach(tvol, k, v) {
        if ((rc = volume_facts(a, v)))
            goto out;
    }
    json_t *me = json_object_get(tsrv, self);
    json_object_set_new(vars, "self", json_pack("{s:s, s:O, s:O?}", "name", self, "target", me,
                                                "source", json_object_get(ssrv, self)));
    /* where fluid-config goes: the server's new floating IP unless told otherwise */
    const char *host = !how || strcmp(how, "floating_ip") == 0 ? osa_js(me, "floating_ip")
                       : strcmp(how, "fixed_ip") == 0          ? osa_js(me, "fixed_ip")
                                                               : how;
    if (!host) {
        rc = FC_ERR(FC_E_NOTFOUND, "cloud '%s': relocated server '%.100s' has no %s to reach "
                    "it by (options.config_ssh.host can name an address)", a->cloud,
                    osa_js(me, "name"), how ? how : "floating IP");
        goto out;
    }
    if (strpbrk(host, "/@ []") || (osa_str(a, "ssh-user") && strpbrk(osa_str(a, "ssh-user"),
                                                                      "/@: "))) {
        rc = FC_ERR(FC_E_INVALID, "%s: host or user holds '/', '@', ':' or a space", a->action);
        goto out;
    }
    js = json_dumps(vars, JSON_COMPACT | JSON_SORT_KEYS);
    if (!js || (vfd = text_fd("fluid-vars", js)) < 0) {
        rc = FC_ERRNO(FC_E_IO, "%s: cannot hand the variables over", a->action);
        goto out;
    }
    /* the sibling gets its extra fds as 4, 5, ...: the variables, the inline rules, the
     * console's host keys */
    int fds[3] = {vfd, -1, -1};
    size_t nfd = 1;
    char rpath[32], khpath[32];
    if (doc) {
        rs = json_dumps(doc, JSON_COMPACT);
        if (!rs || (rfd = text_fd("fluid-rules", rs)) < 0) {
            rc = FC_ERRNO(FC_E_IO, "%s: cannot hand the rules over", a->action);
            goto out;
        }
        snprintf(rpath, sizeof rpath, "/dev/fd/%zu", 4 + nfd);
        fds[nfd++] = rfd;
        rules = rpath;
    }
    const char *argv[80];
    char urls[16][1200];
    size_t n = 0, i;
    argv[n++] = "rewrite";
    argv[n++] = "--rules";
    argv[n++] = rules;
    argv[n++] = "--vars";
    argv[n++] = "/dev/fd/4";
    if (osa_str(a, "identity")) {
        argv[n++] = "--identity";
        argv[n++] = osa_str(a, "identity");
    }
    /* the relocated server's host key: a known_hosts file given, else what the server
     * printed on its console (read through Nova: never accepted blindly) */
    const char *kh = osa_str(a, "known-hosts");
    if (!kh || strcmp(kh, "console") == 0) {
        if ((rc = osa_console_known_hosts(a, osa_js(me, "id"), host, &khfd)))
            goto out;
        snprintf(khpath, sizeof khpath, "/dev/fd/%zu", 4 + nfd);
        fds[nfd++] = khfd;
        kh = khpath;
    }
    argv[n++] = "--known-hosts";
    argv[n++] = kh;
    if (osa_flag(a, "dry-run"))
        argv[n++] = "--dry-run";
    json_t *r;
    json_array_foreach(roots, i, r) {
        if (i >= 16) {
            rc = FC_ERR(FC_E_UNSUPPORTED, "%s: more than 16 roots", a->action);
            goto out;
        }
        const char *u = osa_str(a, "ssh-user"), *p = osa_str(a, "ssh-port");
        snprintf(urls[i], sizeof urls[i], "sftp://%s%s%s%s%s%s", u ? u : "", u ? "@" : "",
                 host, p ? ":" : "", p ? p : "", json_string_value(r));
        argv[n++] = urls[i];
    }
    argv[n] = NULL;
    fc_log(FC_INFO, FC_MSG("rewriting the configuration over SFTP"), FC_STR("server", self),
           FC_STR("host", host));
    if ((rc = osa_run_sibling(a, "config", argv, -1, -1, fds, nfd, &res)))
        goto out;
    json_object_set_new(a->result, "host", json_string(host));
    json_object_set(a->result, "changed", json_object_get(res, "changed"));
    json_object_set(a->result, "unchanged", json_object_get(res, "unchanged"));
    json_object_set(a->result, "variables", vars);
out:
    if (vfd >= 0)
        close(vfd);
    if (khfd >= 0)
        close(khfd);
    if (rfd >= 0)
        close(rfd);
    free(js);
    free(rs);
    json_decref(doc);
    json_decref(vars);
    json_decref(roots);
    json_decref(res);
    return rc;
}
