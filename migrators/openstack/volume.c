/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-openstack volume actions, method `image`: volume-export (Cinder upload-to-image on
 * the source, then the image streamed out as image-export does), volume-import (stdin into
 * an image, then a volume created from it) and volume-attach (at the same device). Each
 * marks what it makes with the relocation id and reuses it on a re-run. */
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "fluid/error.h"
#include "fluid/log.h"
#include "osa.h"

static const char *const img_ok[] = {"active", NULL};
static const char *const img_bad[] = {"killed", "deleted", "pending_delete", "deactivated",
                                      NULL};

fc_rc
osa_find_volume(struct osa *a, const char *id_or_name, json_t **out)
{
    char q[600], path[900];
    fc_rc rc = osa_q(id_or_name, q, sizeof q);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "/volumes/detail?name=%s", q);
    return osa_resolve(a, FC_SVC_VOLUME, path, "/volumes", "volumes", "volume", id_or_name,
                       "volume", out);
}

fc_rc
osa_volume_export(struct osa *a)
{
    const char *vname, *iname;
    fc_rc rc;
    if ((rc = osa_need(a, "volume", &vname)) || (rc = osa_need(a, "image-name", &iname)))
        return rc;
    json_t *vol = NULL, *imgs = NULL, *img = NULL;
    if ((rc = osa_find_volume(a, vname, &vol)))
        return rc;
    const char *vid = osa_js(vol, "id");
    char q[600], path[900], id[80] = "";
    bool created = false;
    if ((rc = osa_q(iname, q, sizeof q)))
        goto out;
    snprintf(path, sizeof path, "/images?name=%s&owner=%s", q, fc_os_project_id(a->os));
    if ((rc = osa_find_named(a, FC_SVC_IMAGE, path, "images", iname, &imgs)))
        goto out;
    if (json_array_size(imgs) > 1) {
        rc = FC_ERR(FC_E_CONFLICT, "cloud '%s': %zu images are named \"%.200s\"", a->cloud,
                    json_array_size(imgs), iname);
        goto out;
    }
    if (json_array_size(imgs) == 1) {
        const json_t *i0 = json_array_get(imgs, 0);
        /* Cinder's final image update may purge the marker added while it uploads: an
         * image of the derived name without one is taken as ours (and marked below) */
        const char *m = osa_js(i0, "fluid_relocation");
        if (m && strcmp(m, a->rid) != 0) {
            rc = FC_ERR(FC_E_CONFLICT, "cloud '%s': image \"%.200s\" exists but was made by "
                        "relocation %.64s", a->cloud, iname, m);
            goto out;
        }
        snprintf(id, sizeof id, "%s", osa_js(i0, "id"));
    } else {
        /* an attached volume is uploaded as it is (crash-consistent), which Cinder allows
         * only with "force" and its operator's enable_force_upload */
        const char *st = osa_js(vol, "status");
        bool inuse = st && strcmp(st, "in-use") == 0;
        json_t *body = json_pack("{s:{s:s,s:s,s:s,s:b}}", "os-volume_upload_image",
                                 "image_name", iname, "disk_format", "raw", "container_format",
                                 "bare", "force", osa_flag(a, "force") || inuse), *r = NULL;
        snprintf(path, sizeof path, "/volumes/%s/action", vid);
        rc = fc_os_call(a->os, FC_SVC_VOLUME, "POST", path, body, NULL, &r);
        json_decref(body);
        if (rc == FC_E_REMOTE && inuse) {
            char why[1024];
            snprintf(why, sizeof why, "%s", fc_error_msg());
            rc = FC_ERR(FC_E_REMOTE, "%s; volume %s is attached: the cloud must allow "
                        "uploading attached volumes (Cinder's enable_force_upload), or use "
                        "volume_method ssh", why, vid);
        }
        if (rc)
            goto out;
        const char *iid = osa_js(json_object_get(r, "os-volume_upload_image"), "image_id");
        snprintf(id, sizeof id, "%s", iid ? iid : "");
        json_decref(r);
        if (!id[0]) {
            rc = FC_ERR(FC_E_INVALID, "cloud '%s': upload-to-image reply has no image_id",
                        a->cloud);
            goto out;
        }
        created = true;
        /* the marker: a property the owner may add while the image is being made */
        json_t *patch = json_pack("[{s:s,s:s,s:s}]", "op", "add", "path", "/fluid_relocation",
                                  "value", a->rid);
        snprintf(path, sizeof path, "/images/%s", id);
        rc = osa_glance_patch(a, path, patch);
        json_decref(patch);
        if (rc)
            goto out;
    }
    char what[400];
    snprintf(path, sizeof path, "/images/%s", id);
    snprintf(what, sizeof what, "image %.200s of volume %.80s", iname, vid);
    if ((rc = osa_wait(a, FC_SVC_IMAGE, path, NULL, "status", img_ok, img_bad, what, &img)))
        goto out;
    if (!osa_js(img, "fluid_relocation")) {
        json_t *patch = json_pack("[{s:s,s:s,s:s}]", "op", "add", "path", "/fluid_relocation",
                                  "value", a->rid);
        rc = osa_glance_patch(a, path, patch);
        json_decref(patch);
        if (rc)
            goto out;
    }
    osa_resource(a, "image", id, iname, created);
    json_object_set_new(a->result, "volume_id", json_string(vid));
    rc = osa_export_image(a, img);
out:
    json_decref(vol);
    json_decref(imgs);
    json_decref(img);
    return rc;
}

static const char *const vol_ok[] = {"available", NULL};
static const char *const vol_bad[] = {"error", "error_deleting", "deleting", NULL};

fc_rc
osa_ensure_volume(struct osa *a, const char *name, long gb, const char *type,
                  const char *image_id, char vid[80], bool *created, json_t **vol)
{
    json_t *vols = NULL;
    char q[600], path[900];
    fc_rc rc;
    *created = false;
    if ((rc = osa_q(name, q, sizeof q)))
        return rc;
    snprintf(path, sizeof path, "/volumes/detail?name=%s", q);
    if ((rc = osa_find_named(a, FC_SVC_VOLUME, path, "volumes", name, &vols)))
        return rc;
    if (json_array_size(vols) > 1) {
        rc = FC_ERR(FC_E_CONFLICT, "cloud '%s': %zu volumes are named \"%.200s\"", a->cloud,
                    json_array_size(vols), name);
    } else if (json_array_size(vols) == 1) {
        const json_t *v0 = json_array_get(vols, 0);
        const char *m = osa_js(json_object_get(v0, "metadata"), "fluid_relocation");
        if (!m || strcmp(m, a->rid) != 0)
            rc = FC_ERR(FC_E_CONFLICT, "cloud '%s': volume \"%.200s\" exists but was not made "
                        "by relocation %s", a->cloud, name, a->rid);
        else
            snprintf(vid, 80, "%s", osa_js(v0, "id"));
    } else {
        json_t *v = json_pack("{s:s,s:i,s:{s:s}}", "name", name, "size", (int)gb,
                              "metadata", "fluid_relocation", a->rid);
        if (image_id)
            json_object_set_new(v, "imageRef", json_string(image_id));
        if (type)
            json_object_set_new(v, "volume_type", json_string(type));
        json_t *body = json_pack("{s:o}", "volume", v), *r = NULL;
        rc = fc_os_call(a->os, FC_SVC_VOLUME, "POST", "/volumes", body, NULL, &r);
        json_decref(body);
        if (rc == FC_OK) {
            const char *x = osa_js(json_object_get(r, "volume"), "id");
            snprintf(vid, 80, "%s", x ? x : "");
            *created = true;
            if (!vid[0])
                rc = FC_ERR(FC_E_INVALID, "cloud '%s': volume create reply has no id", a->cloud);
        }
        json_decref(r);
    }
    json_decref(vols);
    if (rc)
        return rc;
    char what[400];
    snprintf(path, sizeof path, "/volumes/%s", vid);
    snprintf(what, sizeof what, "volume %.200s", name);
    const char *const ok_any[] = {"available", "in-use", NULL};
    return osa_wait(a, FC_SVC_VOLUME, path, "volume", "status", *created ? vol_ok : ok_any,
                    vol_bad, what, vol);
}

fc_rc
osa_volume_import(struct osa *a)
{
    const char *name, *size, *dfmt, *type = osa_str(a, "volume-type");
    fc_rc rc;
    if ((rc = osa_need(a, "name", &name)) || (rc = osa_need(a, "size", &size)) ||
        (rc = osa_need(a, "disk-format", &dfmt)))
        return rc;
    char *end;
    long gb = strtol(size, &end, 10);
    if (*end || gb < 1 || gb > 65536)
        return FC_ERR(FC_E_INVALID, "volume-import: --size \"%.32s\" is not 1..65536 GiB", size);
    char iname[400], iid[80], path[900];
    snprintf(iname, sizeof iname, "%.300s-import", name);
    /* the data first (also when the volume exists: the input is read and checked) */
    if ((rc = osa_import_image(a, iname, dfmt, "bare", NULL, NULL, iid)))
        return rc;
    json_t *vol = NULL;
    char vid[80] = "";
    bool created = false;
    if ((rc = osa_ensure_volume(a, name, gb, type, iid, vid, &created, &vol)))
        return rc;
    if (osa_flag(a, "bootable") && !json_is_true(json_object_get(vol, "bootable")) &&
        strcmp(osa_js(vol, "bootable") ? osa_js(vol, "bootable") : "", "true") != 0) {
        json_t *b = json_pack("{s:{s:b}}", "os-set_bootable", "bootable", 1);
        snprintf(path, sizeof path, "/volumes/%s/action", vid);
        rc = fc_os_call(a->os, FC_SVC_VOLUME, "POST", path, b, NULL, NULL);
        json_decref(b);
    }
    json_decref(vol);
    if (rc)
        return rc;
    json_object_set_new(a->result, "volume_id", json_string(vid));
    osa_resource(a, "volume", vid, name, created);
    return FC_OK;
}

static const char *const inuse[] = {"in-use", NULL};
static const char *const attach_bad[] = {"error", "error_attaching", "available", NULL};

fc_rc
osa_volume_attach(struct osa *a)
{
    const char *sname, *vname, *dev = osa_str(a, "device");
    fc_rc rc;
    if ((rc = osa_need(a, "server", &sname)) || (rc = osa_need(a, "volume", &vname)))
        return rc;
    json_t *srv = NULL, *vol = NULL, *atts = NULL;
    char q[600], path[900];
    if ((rc = osa_q(sname, q, sizeof q)))
        return rc;
    snprintf(path, sizeof path, "/servers/detail?name=%s", q);
    if ((rc = osa_resolve(a, FC_SVC_COMPUTE, path, "/servers", "servers", "server", sname,
                          "server", &srv)))
        return rc;
    if ((rc = osa_find_volume(a, vname, &vol)))
        goto out;
    const char *sid = osa_js(srv, "id"), *vid = osa_js(vol, "id");
    snprintf(path, sizeof path, "/servers/%s/os-volume_attachments", sid);
    if ((rc = fc_os_list(a->os, FC_SVC_COMPUTE, path, "volumeAttachments", 0, &atts)))
        goto out;
    size_t i;
    json_t *x;
    const char *have = NULL;
    json_array_foreach(atts, i, x) if (osa_js(x, "volumeId") && !strcmp(osa_js(x, "volumeId"), vid)) have = osa_js(x, "device");
    if (!have) {
        json_t *va = json_pack("{s:s}", "volumeId", vid), *r = NULL;
        if (dev)
            json_object_set_new(va, "device", json_string(dev));
        json_t *body = json_pack("{s:o}", "volumeAttachment", va);
        rc = fc_os_call(a->os, FC_SVC_COMPUTE, "POST", path, body, NULL, &r);
        json_decref(body);
        if (rc)
            goto out;
        const char *d = osa_js(json_object_get(r, "volumeAttachment"), "device");
        json_object_set_new(a->result, "device", json_string(d ? d : ""));
        json_decref(r);
        char what[400];
        snprintf(path, sizeof path, "/volumes/%s", vid);
        snprintf(what, sizeof what, "volume %.200s attaching", vname);
        if ((rc = osa_wait(a, FC_SVC_VOLUME, path, "volume", "status", inuse, attach_bad, what,
                           NULL)))
            goto out;
    } else {
        json_object_set_new(a->result, "device", json_string(have));
    }
    const char *got = osa_js(a->result, "device");
    if (dev && got && strcmp(got, dev) != 0) {
        char note[300];
        snprintf(note, sizeof note, "asked for device %s, the hypervisor chose %s", dev, got);
        fc_event_info(a->m, json_pack("{s:s}", "note", note));
        json_object_set_new(a->result, "notes", json_pack("[s]", note));
    }
    json_object_set_new(a->result, "server_id", json_string(sid));
    json_object_set_new(a->result, "volume_id", json_string(vid));
    osa_resource(a, "volume_attachment", vid, vname, !have);
out:
    json_decref(srv);
    json_decref(vol);
    json_decref(atts);
    return rc;
}
