/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-openstack volume actions, method `ssh`: the volume's data is read from and written to
 * the block-storage backend's file over SSH with fluid-volume, the backend reached as the
 * cloud's `storage_ssh` entry in clouds.yaml says (host, port, user, identity, known_hosts,
 * path template with {id}). volume-ssh-read streams a source volume to stdout;
 * volume-ssh-write creates the target volume empty (same size), then writes stdin into its
 * file with `--delta` (the file Cinder made keeps its inode, owner and mode) and marks the
 * volume with the data's SHA-256, so that a re-run reads its input but writes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/sha256.h"
#include "fluid/stream.h"
#include "osa.h"

#define MARK_SHA "fluid_ssh_sha256"

/* The backend file of volume `vid` as an ssh:// URL, from storage_ssh. */
static fc_rc
storage_url(struct osa *a, const char *vid, char *out, size_t cap)
{
    const struct fc_cloud_config *c = a->cfg;
    if (!c->storage_host || !c->storage_path)
        return FC_ERR(FC_E_INVALID, "cloud '%s' (%s) has no storage_ssh entry: the volume "
                      "method ssh needs storage_ssh: {host, path, user, port, identity, "
                      "known_hosts} in the cloud's clouds.yaml entry (docs/openstack.md)",
                      a->cloud, c->origin ? c->origin : "?");
    for (const char *p = vid; *p; p++)
        if (!strchr("0123456789abcdefABCDEF-", *p))
            return FC_ERR(FC_E_INVALID, "cloud '%s': volume id \"%.80s\" is not a UUID",
                          a->cloud, vid);
    if (strpbrk(c->storage_host, "/@ []") || (c->storage_user && strpbrk(c->storage_user, "/@: ")))
        return FC_ERR(FC_E_INVALID, "cloud '%s': storage_ssh host or user holds '/', '@', ':' "
                      "or a space", a->cloud);
    char path[1024];
    const char *t = c->storage_path, *id = strstr(t, "{id}");
    int n = snprintf(path, sizeof path, "%.*s%s%s", (int)(id - t), t, vid, id + 4);
    if (n < 0 || (size_t)n >= sizeof path || strstr(path, "{id}"))
        return FC_ERR(FC_E_INVALID, "cloud '%s': storage_ssh.path: too long or {id} twice",
                      a->cloud);
    n = snprintf(out, cap, "ssh://%s%s%s%s%s%s", c->storage_user ? c->storage_user : "",
                 c->storage_user ? "@" : "", c->storage_host, c->storage_port ? ":" : "",
                 c->storage_port ? c->storage_port : "", path);
    if (n < 0 || (size_t)n >= cap)
        return FC_ERR(FC_E_INVALID, "cloud '%s': storage URL too long", a->cloud);
    return FC_OK;
}

/* "copy" [flags] --identity K --known-hosts F: the fixed head of fluid-volume's argv. */
static size_t
volume_args(struct osa *a, const char **argv)
{
    size_t n = 0;
    argv[n++] = "copy";
    if (a->cfg->storage_identity) {
        argv[n++] = "--identity";
        argv[n++] = a->cfg->storage_identity;
    }
    if (a->cfg->storage_known_hosts) {
        argv[n++] = "--known-hosts";
        argv[n++] = a->cfg->storage_known_hosts;
    }
    return n;
}

static bool
framed_out(struct osa *a)
{
    if (osa_flag(a, "framed"))
        return true;
    if (osa_flag(a, "plain"))
        return false;
    return a->m->task && !json_is_false(json_object_get(a->m->task, "framed"));
}

fc_rc
osa_volume_ssh_read(struct osa *a)
{
    const char *vname;
    fc_rc rc;
    if ((rc = osa_need(a, "volume", &vname)))
        return rc;
    if (osa_flag(a, "framed") && osa_flag(a, "plain"))
        return FC_ERR(FC_E_INVALID, "%s: --framed and --plain exclude each other", a->action);
    json_t *vol = NULL, *res = NULL;
    if ((rc = osa_find_volume(a, vname, &vol)))
        return rc;
    char url[1400];
    const char *vid = osa_js(vol, "id");
    if ((rc = storage_url(a, vid, url, sizeof url)))
        goto out;
    const char *argv[16];
    size_t n = volume_args(a, argv);
    if (framed_out(a))
        argv[n++] = "--framed";
    argv[n++] = url;
    argv[n++] = "-";
    argv[n] = NULL;
    fc_log(FC_INFO, FC_MSG("reading the volume's backend file over SSH"),
           FC_STR("volume", vid), FC_STR("host", a->cfg->storage_host));
    if ((rc = osa_run_sibling(a, "volume", argv, -1, STDOUT_FILENO, NULL, 0, &res)))
        goto out;
    json_object_set_new(a->result, "volume_id", json_string(vid));
    json_object_set(a->result, "sha256", json_object_get(res, "sha256"));
    json_object_set(a->result, "bytes", json_object_get(res, "bytes"));
    json_object_set_new(a->result, "copy", json_incref(res));
out:
    json_decref(vol);
    json_decref(res);
    return rc;
}

/* ---- a re-run: the input is read and its digest compared with the mark ---- */

struct drain {
    struct fc_sink sink;
    uint8_t sha[32];
    bool have;
    uint64_t size;
};

static fc_rc
d_begin(struct fc_sink *s, const struct fc_stream_info *i)
{
    (void)s, (void)i;
    return FC_OK;
}

static fc_rc
d_write(struct fc_sink *s, uint64_t off, const void *b, size_t n)
{
    (void)s, (void)off, (void)b, (void)n;
    return FC_OK;
}

static fc_rc
d_zero(struct fc_sink *s, uint64_t off, uint64_t n)
{
    (void)s, (void)off, (void)n;
    return FC_OK;
}

static fc_rc
d_end(struct fc_sink *s, uint64_t size, const uint8_t *sha)
{
    struct drain *d = (struct drain *)s;
    d->size = size;
    if (sha) {
        memcpy(d->sha, sha, 32);
        d->have = true;
    }
    return FC_OK;
}

static fc_rc
drain_and_check(struct osa *a, const char *name, const char *mark)
{
    struct drain d = {.sink = {d_begin, d_write, d_zero, d_end}};
    struct fc_stream_reader_opts o = {.verify = true, .hash_plain = true,
                                      .cancel = &fc_cancel_requested};
    fc_rc rc = fc_stream_read(STDIN_FILENO, &d.sink, &o, NULL);
    if (rc)
        return rc;
    char hex[65];
    fc_hex(d.sha, 32, hex);
    if (!d.have || strcmp(hex, mark) != 0)
        return FC_ERR(FC_E_CONFLICT, "cloud '%s': volume \"%.200s\" was written by an earlier "
                      "run with data of SHA-256 %.64s, the input now hashes to %s: not "
                      "overwritten", a->cloud, name, mark, d.have ? hex : "(none)");
    json_object_set_new(a->result, "sha256", json_string(hex));
    json_object_set_new(a->result, "bytes", json_integer((json_int_t)d.size));
    json_object_set_new(a->result, "written", json_false());
    return FC_OK;
}

fc_rc
osa_volume_ssh_write(struct osa *a)
{
    const char *name, *size, *type = osa_str(a, "volume-type");
    fc_rc rc;
    if ((rc = osa_need(a, "name", &name)) || (rc = osa_need(a, "size", &size)))
        return rc;
    char *end;
    long gb = strtol(size, &end, 10);
    if (*end || gb < 1 || gb > 65536)
        return FC_ERR(FC_E_INVALID, "%s: --size \"%.32s\" is not 1..65536 GiB", a->action,
                      size);
    if (!a->cfg->storage_host) /* before anything is created */
        return storage_url(a, "0", (char[8]){0}, 8);
    json_t *vol = NULL, *res = NULL;
    char vid[80] = "", url[1400], path[300];
    bool created = false;
    if ((rc = osa_ensure_volume(a, name, gb, type, NULL, vid, &created, &vol)))
        return rc;
    osa_resource(a, "volume", vid, name, created);
    json_object_set_new(a->result, "volume_id", json_string(vid));
    if (osa_flag(a, "bootable") && !json_is_true(json_object_get(vol, "bootable")) &&
        strcmp(osa_js(vol, "bootable") ? osa_js(vol, "bootable") : "", "true") != 0) {
        json_t *b = json_pack("{s:{s:b}}", "os-set_bootable", "bootable", 1);
        snprintf(path, sizeof path, "/volumes/%s/action", vid);
        rc = fc_os_call(a->os, FC_SVC_VOLUME, "POST", path, b, NULL, NULL);
        json_decref(b);
        if (rc)
            goto out;
    }
    const char *mark = osa_js(json_object_get(vol, "metadata"), MARK_SHA);
    if (mark) {
        rc = drain_and_check(a, name, mark);
        goto out;
    }
    if ((rc = storage_url(a, vid, url, sizeof url)))
        goto out;
    const char *argv[16];
    size_t n = volume_args(a, argv);
    argv[n++] = "--delta";
    argv[n++] = "--no-hash-record"; /* Cinder's directory: nothing of ours beside its file */
    argv[n++] = "-";
    argv[n++] = url;
    argv[n] = NULL;
    fc_log(FC_INFO, FC_MSG("writing the volume's backend file over SSH"),
           FC_STR("volume", vid), FC_STR("host", a->cfg->storage_host));
    if ((rc = osa_run_sibling(a, "volume", argv, STDIN_FILENO, -1, NULL, 0, &res)))
        goto out;
    const char *sha = osa_js(res, "sha256");
    if (!sha) {
        rc = FC_ERR(FC_E_INVALID, "fluid-volume's result has no sha256");
        goto out;
    }
    json_t *body = json_pack("{s:{s:s}}", "metadata", MARK_SHA, sha);
    snprintf(path, sizeof path, "/volumes/%s/metadata", vid);
    rc = fc_os_call(a->os, FC_SVC_VOLUME, "POST", path, body, NULL, NULL);
    json_decref(body);
    if (rc)
        goto out;
    json_object_set_new(a->result, "sha256", json_string(sha));
    json_object_set(a->result, "bytes", json_object_get(res, "bytes"));
    json_object_set_new(a->result, "written", json_true());
    json_object_set_new(a->result, "copy", json_incref(res));
out:
    json_decref(vol);
    json_decref(res);
    return rc;
}
