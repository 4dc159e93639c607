/* SPDX-License-Identifier: Apache-2.0 */
/* The helper destination: `fluid-volume serve` on the far host, started over an SSH exec
 * channel by absolute path (the command line holds only that path and "serve": both are
 * checked with fc_ssh_safe_word; the destination path travels inside the protocol).
 * It hashes remotely (resume, delta, the final SHA-256), takes zstd chunks, keeps holes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "volume.h"

static const char *const helper_paths[] = {
    VOL_HELPER_DEFAULT, "/usr/local/libexec/fluidcloud/fluid-volume",
    "/usr/bin/fluid-volume", "/usr/local/bin/fluid-volume", NULL};

struct hstream {
    struct fc_ssh *ssh;
    struct fc_ssh_chan *ch;
    uint64_t wire_seen;
};

struct helper {
    struct hstream st[VOL_MAX_STREAMS];
};

static void
account(struct job *j, struct hstream *s)
{
    uint64_t sent;
    fc_ssh_socket_bytes(s->ssh, &sent, NULL);
    atomic_fetch_add(&j->wire_bytes, sent - s->wire_seen);
    s->wire_seen = sent;
}

/* Reads one reply; VM_ERR becomes the helper's error. *payload is malloc'd (may be NULL). */
static fc_rc
read_reply(struct fc_ssh_chan *ch, struct fc_ssh *ssh, struct fc_frame *f, uint8_t **payload,
           uint64_t max)
{
    uint8_t h[24];
    *payload = NULL;
    fc_rc rc;
    do { /* PROGRESS: the helper is hashing; the wait goes on */
        if ((rc = fc_ssh_chan_read_full(ch, h, sizeof h, "the helper's reply")) != FC_OK)
            return rc;
        fc_frame_decode(h, f);
    } while (f->type == VM_PROGRESS && f->length == 0);
    uint64_t lim = f->type == VM_ERR ? 4096 : max;
    if (f->length > lim)
        return FC_ERR(FC_E_REMOTE, "helper on %s: reply %u of %" PRIu64 " bytes is too long",
                      fc_ssh_peer(ssh), f->type, f->length);
    uint8_t *p = malloc(f->length + 1);
    if (!p)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    if (f->length && (rc = fc_ssh_chan_read_full(ch, p, f->length, "the helper's reply")) != FC_OK) {
        free(p);
        return rc;
    }
    p[f->length] = 0;
    if (f->type == VM_ERR) {
        fc_rc er = f->aux > 0 && f->aux < FC_RC__COUNT ? (fc_rc)f->aux : FC_E_REMOTE;
        for (uint8_t *c = p; *c; c++)
            if (*c < 0x20)
                *c = ' ';
        rc = FC_ERR(er, "helper on %s: %s", fc_ssh_peer(ssh), (char *)p);
        free(p);
        return rc;
    }
    *payload = p;
    return FC_OK;
}

/* After a failed write: the helper may have said why before it exited. */
static fc_rc
why(struct hstream *s, fc_rc rc)
{
    if (rc == FC_E_CANCELLED)
        return rc;
    struct fc_error saved = *fc_error_last();
    struct fc_frame f;
    uint8_t *p = NULL;
    fc_rc r2 = read_reply(s->ch, s->ssh, &f, &p, 1 << 16);
    free(p);
    if (r2 != FC_OK && r2 != FC_E_NET && r2 != FC_E_TIMEOUT && r2 != FC_E_NOMEM)
        return r2; /* the helper's own error */
    return FC_ERR(saved.rc, "%s", saved.msg);
}

/* Starts the helper on a session and checks its greeting. */
static fc_rc
start_helper(struct job *j, struct fc_ssh *ssh, const char *path, struct fc_ssh_chan **out)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "%s serve", path);
    struct fc_ssh_chan *ch = NULL;
    fc_rc rc = fc_ssh_exec(ssh, cmd, &ch);
    if (rc != FC_OK)
        return rc;
    char magic[8];
    struct fc_frame f;
    uint8_t *p = NULL;
    rc = fc_ssh_chan_read_full(ch, magic, 8, "the helper's greeting");
    if (rc == FC_OK && memcmp(magic, VOL_PROTO_MAGIC, 8) != 0)
        rc = FC_ERR(FC_E_UNSUPPORTED, "helper %s on %s: not a compatible fluid-volume", path,
                    fc_ssh_peer(ssh));
    if (rc == FC_OK && (rc = read_reply(ch, ssh, &f, &p, 4096)) == FC_OK && f.type != VM_OK)
        rc = FC_ERR(FC_E_UNSUPPORTED, "helper %s on %s: unexpected greeting", path,
                    fc_ssh_peer(ssh));
    free(p);
    if (rc == FC_OK)
        rc = fc_ssh_chan_write(ch, VOL_PROTO_MAGIC, 8);
    if (rc != FC_OK) {
        char err[512];
        fc_ssh_chan_stderr(ch, err, sizeof err);
        fc_ssh_chan_close(ch, NULL);
        return rc;
    }
    *out = ch;
    return FC_OK;
}

fc_rc
dest_helper_probe(struct job *j, bool *usable)
{
    *usable = false;
    struct fc_ssh_opts o;
    job_ssh_opts(j, &j->dst.url, &o);
    fc_rc rc = fc_ssh_connect(&o, &j->ssh0);
    if (rc != FC_OK)
        return rc;
    if (j->remote_helper && !strcmp(j->remote_helper, "none"))
        return FC_OK;
    const char *path = NULL;
    struct fc_sftp_stat st;
    if (j->remote_helper) {
        path = j->remote_helper;
    } else {
        for (int i = 0; helper_paths[i] && !path; i++)
            if (fc_sftp_stat(j->ssh0, helper_paths[i], &st) == FC_OK && S_ISREG(st.mode) &&
                (st.mode & 0111))
                path = helper_paths[i];
        if (!path) {
            fc_event_info(j->m, json_pack("{s:s,s:s}", "mode", "sftp", "note",
                                          "destination has no fluid-volume helper"));
            fc_error_clear();
            return FC_OK;
        }
    }
    rc = start_helper(j, j->ssh0, path, &j->chan0);
    if (rc != FC_OK) {
        if (j->remote_helper)
            return FC_ERR(rc, "remote helper %s on %s cannot be used: %s", path,
                          fc_ssh_peer(j->ssh0), fc_error_msg());
        fc_event_info(j->m, json_pack("{s:s,s:s,s:s}", "mode", "sftp", "note",
                                      "the destination's helper did not start", "error",
                                      fc_error_msg()));
        fc_error_clear();
        return FC_OK;
    }
    snprintf(j->helper_path, sizeof j->helper_path, "%s", path);
    *usable = true;
    return FC_OK;
}

static fc_rc
send_open(struct job *j, struct hstream *s, const char *mode, bool hashes, json_t **reply)
{
    json_t *o = json_pack("{s:s,s:s,s:b,s:b,s:b,s:b,s:b}", "path", j->dst.url.path, "mode",
                          mode, "hashes", hashes, "sparse", j->sparse, "inorder",
                          j->streams == 1, "rehash", j->rehash, "write_record", !j->no_record);
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!txt)
        return FC_ERR(FC_E_INVALID, "destination path is not valid UTF-8");
    uint8_t h[24];
    put_hdr(h, VM_OPEN, 0, 0, strlen(txt));
    fc_rc rc = fc_ssh_chan_write(s->ch, h, sizeof h);
    if (rc == FC_OK)
        rc = fc_ssh_chan_write(s->ch, txt, strlen(txt));
    free(txt);
    if (rc != FC_OK)
        return why(s, rc);
    struct fc_frame f;
    uint8_t *p = NULL;
    if ((rc = read_reply(s->ch, s->ssh, &f, &p, 65536)) != FC_OK)
        return rc;
    json_error_t je;
    *reply = f.type == VM_OK ? json_loadb((char *)p, f.length, 0, &je) : NULL;
    free(p);
    if (!*reply)
        return FC_ERR(FC_E_REMOTE, "helper on %s: bad answer to OPEN", fc_ssh_peer(s->ssh));
    return FC_OK;
}

static fc_rc
h_open(struct job *j)
{
    struct helper *hp = calloc(1, sizeof *hp);
    if (!hp)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    j->dstate = hp;
    struct hstream *s = &hp->st[0];
    s->ssh = j->ssh0;
    s->ch = j->chan0;
    j->ssh0 = NULL;
    j->chan0 = NULL;
    bool hashes = j->delta || j->resume;
    json_t *r = NULL;
    fc_rc rc = send_open(j, s, j->delta ? "delta" : j->resume ? "resume" : "copy", hashes, &r);
    if (rc != FC_OK)
        return rc;
    bool base = json_is_true(json_object_get(r, "base"));
    bool device = json_is_true(json_object_get(r, "device"));
    const char *rec = json_string_value(json_object_get(r, "record"));
    if (rec) /* from the far side: only ever shown as a JSON string */
        snprintf(j->hash_record, sizeof j->hash_record, "%s", rec);
    json_decref(r);
    j->fresh = !base && !device;
    j->base_pending = hashes && base; /* the helper hashes its base now: h_base_wait */
    account(j, s);
    return FC_OK;
}

static fc_rc
h_base_wait(struct job *j)
{
    struct helper *hp = j->dstate;
    struct hstream *s = &hp->st[0];
    struct fc_frame f;
    uint8_t *p = NULL;
    j->base_pending = false;
    fc_rc rc = read_reply(s->ch, s->ssh, &f, &p, 1ull << 29);
    if (rc != FC_OK)
        return rc;
    if (f.type != VM_HASHES || f.length % 32) {
        free(p);
        return FC_ERR(FC_E_REMOTE, "helper on %s: bad chunk hashes", fc_ssh_peer(s->ssh));
    }
    j->base_hash = p;
    j->base_chunks = f.length / 32;
    account(j, s);
    return FC_OK;
}

static fc_rc
h_attach(struct job *j, int i)
{
    struct helper *hp = j->dstate;
    struct hstream *s = &hp->st[i];
    struct fc_ssh_opts o;
    job_ssh_opts(j, &j->dst.url, &o);
    fc_rc rc = fc_ssh_connect(&o, &s->ssh);
    if (rc == FC_OK)
        rc = start_helper(j, s->ssh, j->helper_path, &s->ch);
    json_t *r = NULL;
    if (rc == FC_OK)
        rc = send_open(j, s, "attach", false, &r);
    json_decref(r);
    return rc;
}

static fc_rc
send(struct hstream *s, uint32_t type, uint32_t aux, uint64_t off, const void *buf,
     uint64_t len)
{
    uint8_t h[24];
    put_hdr(h, type, aux, off, len);
    if (fc_ssh_chan_eof(s->ch)) /* the helper stopped: it said why */
        return why(s, FC_ERR(FC_E_REMOTE, "helper on %s stopped", fc_ssh_peer(s->ssh)));
    fc_rc rc = fc_ssh_chan_write(s->ch, h, sizeof h);
    if (rc == FC_OK && buf && len)
        rc = fc_ssh_chan_write(s->ch, buf, (size_t)len);
    return rc == FC_OK ? rc : why(s, rc);
}

static fc_rc
h_put(struct job *j, int i, struct chunk *c)
{
    struct helper *hp = j->dstate;
    struct hstream *s = &hp->st[i];
    fc_rc rc;
    if (c->zero)
        rc = send(s, VM_ZERO, 0, c->off, NULL, c->len);
    else if (c->z)
        rc = send(s, VM_ZDATA, c->len, c->off, c->z, c->zlen);
    else if (!j->sparse)
        rc = send(s, VM_DATA, 0, c->off, c->data, c->len);
    else {
        rc = FC_OK;
        unsigned nb = (c->len + VOL_BLOCK - 1) / VOL_BLOCK;
        for (unsigned b = 0; b < nb && rc == FC_OK;) {
            bool z = c->zmask & (1u << b);
            unsigned e = b;
            while (e < nb && (bool)(c->zmask & (1u << e)) == z)
                e++;
            uint64_t off = (uint64_t)b * VOL_BLOCK;
            uint64_t end = (uint64_t)e * VOL_BLOCK < c->len ? (uint64_t)e * VOL_BLOCK : c->len;
            if (!z)
                rc = send(s, VM_DATA, 0, c->off + off, c->data + off, end - off);
            else if (c->rewrite)
                rc = send(s, VM_ZERO, 0, c->off + off, NULL, end - off);
            b = e;
        }
    }
    account(j, s);
    return rc;
}

static fc_rc
h_stream_done(struct job *j, int i)
{
    if (i == 0)
        return FC_OK;
    struct helper *hp = j->dstate;
    struct hstream *s = &hp->st[i];
    fc_rc rc = send(s, VM_SYNC, 0, 0, NULL, 0);
    struct fc_frame f;
    uint8_t *p = NULL;
    if (rc == FC_OK && (rc = read_reply(s->ch, s->ssh, &f, &p, 4096)) == FC_OK &&
        f.type != VM_OK)
        rc = FC_ERR(FC_E_REMOTE, "helper on %s: bad answer to SYNC", fc_ssh_peer(s->ssh));
    free(p);
    return rc;
}

static fc_rc
h_finish(struct job *j, uint64_t size, const uint8_t *sha, uint8_t dsha[32])
{
    struct helper *hp = j->dstate;
    struct hstream *s = &hp->st[0];
    uint32_t flags = VF_COMMIT | (j->verify ? VF_VERIFY : 0);
    fc_rc rc = send(s, VM_FINISH, flags, size, sha, 32);
    if (rc != FC_OK)
        return rc;
    struct fc_frame f;
    uint8_t *p = NULL;
    if ((rc = read_reply(s->ch, s->ssh, &f, &p, 32)) != FC_OK)
        return rc;
    if (f.type != VM_DONE || f.length != 32) {
        free(p);
        return FC_ERR(FC_E_REMOTE, "helper on %s: bad answer to FINISH", fc_ssh_peer(s->ssh));
    }
    memcpy(dsha, p, 32);
    free(p);
    account(j, s);
    if (j->verify && memcmp(dsha, sha, 32) != 0)
        return FC_ERR(FC_E_CHECKSUM, "destination %s:%s: SHA-256 (chunk tree) differs from the "
                      "source's",
                      fc_ssh_peer(s->ssh), j->dst.url.path);
    return FC_OK;
}

static void
h_close(struct job *j, bool ok)
{
    struct helper *hp = j->dstate;
    if (hp) {
        for (int i = 0; i < VOL_MAX_STREAMS; i++) {
            fc_ssh_chan_close(hp->st[i].ch, NULL);
            fc_ssh_free(hp->st[i].ssh);
        }
        free(hp);
        j->dstate = NULL;
    }
    fc_ssh_chan_close(j->chan0, NULL);
    fc_ssh_free(j->ssh0);
    j->chan0 = NULL;
    j->ssh0 = NULL;
}

static void
h_abort(struct job *j)
{
    struct helper *hp = j->dstate;
    for (int i = 0; hp && i < VOL_MAX_STREAMS; i++) {
        struct fc_ssh *s = __atomic_load_n(&hp->st[i].ssh, __ATOMIC_ACQUIRE);
        if (s)
            fc_ssh_abort(s);
    }
}

const struct dest_ops dest_helper_ops = {"helper", h_open, h_attach, h_put, h_stream_done,
                                         h_finish, h_close, h_abort, h_base_wait};
