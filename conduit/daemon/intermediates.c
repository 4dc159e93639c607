/* SPDX-License-Identifier: Apache-2.0 */
/* The images a relocation made only to carry data (intermediates.h): found by the names its
 * plan gave them and kept only when they carry its fluid_relocation property. */
#include "intermediates.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fluid/error.h"
#include "fluid/log.h"
#include "planner.h"

static const char *
js(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* The value after `opt` in a stage's args, or NULL. */
static const char *
arg_of(const json_t *args, const char *opt)
{
    size_t k;
    json_t *a;
    json_array_foreach(args, k, a) if (json_string_value(a) && !strcmp(json_string_value(a), opt))
        return json_string_value(json_array_get(args, k + 1));
    return NULL;
}

void
fc_intermediate_names(const json_t *plan, json_t *source, json_t *target)
{
    size_t i, j;
    json_t *t, *st;
    json_array_foreach(json_object_get(plan, "tasks"), i, t) {
        json_array_foreach(json_object_get(t, "stages"), j, st) {
            const json_t *args = json_object_get(st, "args");
            const char *verb = json_string_value(json_array_get(args, 0)), *n;
            if (!verb || strcmp(js(st, "kind") ? js(st, "kind") : "", "openstack") != 0)
                continue;
            if (!strcmp(verb, "snapshot") && (n = arg_of(args, "--name")))
                json_array_append_new(source, json_string(n));
            else if (!strcmp(verb, "volume-export") && (n = arg_of(args, "--image-name")))
                json_array_append_new(source, json_string(n));
            else if (!strcmp(verb, "volume-import") && (n = arg_of(args, "--name"))) {
                char in[512];
                snprintf(in, sizeof in, "%s-import", n);
                json_array_append_new(target, json_string(in));
            }
        }
    }
}

static bool
named(const json_t *names, const char *name)
{
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n) if (name && !strcmp(json_string_value(n), name)) return true;
    return false;
}

/* Deletes this project's images named in `names` that carry fluid_relocation=rid. */
static void
remove_on(struct fc_os *os, const struct fc_cloud_config *cfg, const char *side,
          const json_t *names, const char *rid, json_t *deleted, json_t *errors)
{
    if (!os || json_array_size(names) == 0)
        return;
    char path[600], msg[1024];
    json_t *l = NULL, *e;
    snprintf(path, sizeof path, "/images?owner=%s", fc_os_project_id(os));
    if (fc_os_list(os, FC_SVC_IMAGE, path, "images", 0, &l) != FC_OK) {
        snprintf(msg, sizeof msg, "%s", fc_error_msg());
        fc_planner_scrub(msg, cfg);
        json_array_append_new(errors, json_pack("{s:s,s:s}", "cloud", side, "error", msg));
        return;
    }
    size_t i;
    json_array_foreach(l, i, e) {
        const char *m = js(e, "fluid_relocation"), *id = js(e, "id");
        if (!id || !m || strcmp(m, rid) != 0 || !named(names, js(e, "name")))
            continue;
        snprintf(path, sizeof path, "/images/%s", id);
        fc_rc rc = fc_os_call(os, FC_SVC_IMAGE, "DELETE", path, NULL, NULL, NULL);
        if (rc == FC_E_NOTFOUND)
            continue;
        if (rc != FC_OK) {
            snprintf(msg, sizeof msg, "%s", fc_error_msg());
            fc_planner_scrub(msg, cfg);
            json_array_append_new(errors, json_pack("{s:s,s:s,s:s?,s:s}", "cloud", side, "id", id,
                                                    "name", js(e, "name"), "error", msg));
            continue;
        }
        fc_log(FC_INFO, FC_MSG("intermediate image deleted"), FC_STR("relocation", rid),
               FC_STR("cloud", side), FC_STR("id", id), FC_STR("name", js(e, "name")));
        json_array_append_new(deleted, json_pack("{s:s,s:s,s:s?}", "cloud", side, "id", id,
                                                 "name", js(e, "name")));
    }
    json_decref(l);
}

json_t *
fc_intermediates_remove(struct fc_os *src, const struct fc_cloud_config *scfg, struct fc_os *dst,
                        const struct fc_cloud_config *dcfg, const json_t *request)
{
    const char *rid = js(request, "relocation_id");
    if (json_is_true(json_object_get(json_object_get(request, "options"), "keep_intermediate")))
        return json_pack("{s:b}", "kept", 1);
    json_t *sn = json_array(), *tn = json_array();
    fc_intermediate_names(json_object_get(request, "plan"), sn, tn);
    json_t *deleted = json_array(), *errors = json_array();
    if (rid) {
        remove_on(src, scfg, "source", sn, rid, deleted, errors);
        remove_on(dst, dcfg, "target", tn, rid, deleted, errors);
    }
    json_decref(sn);
    json_decref(tn);
    return json_pack("{s:b,s:o,s:o}", "kept", 0, "deleted", deleted, "errors", errors);
}
