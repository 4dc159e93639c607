/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-openstack helpers: options, the result's resource list, finding resources by their
 * derived name, and waiting for a resource to reach a state (with progress events). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fluid/cloud/resources.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "osa.h"

const char *
osa_js(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

const char *
osa_str(struct osa *a, const char *name)
{
    return json_string_value(json_object_get(a->args, name));
}

bool
osa_flag(struct osa *a, const char *name)
{
    return json_is_true(json_object_get(a->args, name));
}

const json_t *
osa_list(struct osa *a, const char *name)
{
    static json_t *empty;
    const json_t *l = json_object_get(a->args, name);
    if (l)
        return l;
    if (!empty)
        empty = json_array();
    return empty;
}

fc_rc
osa_need(struct osa *a, const char *name, const char **out)
{
    *out = osa_str(a, name);
    if (!*out || !**out)
        return FC_ERR(FC_E_INVALID, "%s: --%s is required", a->action, name);
    return FC_OK;
}

void
osa_resource(struct osa *a, const char *kind, const char *id, const char *name, bool created)
{
    json_array_append_new(json_object_get(a->result, "resources"),
                          json_pack("{s:s,s:s?,s:s?,s:s}", "kind", kind, "id", id, "name", name,
                                    "action", created ? "created" : "reused"));
    fc_log(FC_INFO, FC_MSG(created ? "created" : "reused"), FC_STR("kind", kind),
           FC_STR("id", id ? id : ""), FC_STR("name", name ? name : ""));
    fc_event_info(a->m, json_pack("{s:s,s:s,s:s?,s:s?}", "resource", kind, "action",
                                  created ? "created" : "reused", "id", id, "name", name));
}

const char *
osa_tag(struct osa *a)
{
    static char tag[160];
    snprintf(tag, sizeof tag, "fluid-relocation=%s", a->rid);
    return tag;
}

fc_rc
osa_q(const char *s, char *out, size_t cap)
{
    if (!fc_url_escape(s, out, cap))
        return FC_ERR(FC_E_INVALID, "name \"%.64s...\" is too long", s);
    return FC_OK;
}

fc_rc
osa_find_named(struct osa *a, enum fc_os_service svc, const char *path, const char *key,
               const char *name, json_t **out)
{
    json_t *items = NULL;
    *out = NULL;
    fc_rc rc = fc_os_list(a->os, svc, path, key, 0, &items);
    if (rc)
        return rc;
    json_t *res = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        const char *n = osa_js(it, "name");
        if (n && strcmp(n, name) == 0)
            json_array_append(res, it);
    }
    json_decref(items);
    *out = res;
    return FC_OK;
}

fc_rc
osa_find_one(struct osa *a, enum fc_os_service svc, const char *path, const char *key,
             const char *name, const char *what, json_t **out)
{
    json_t *l = NULL;
    *out = NULL;
    fc_rc rc = osa_find_named(a, svc, path, key, name, &l);
    if (rc)
        return rc;
    size_t n = json_array_size(l);
    if (n == 1)
        *out = json_incref(json_array_get(l, 0));
    json_decref(l);
    if (n == 0)
        return FC_ERR(FC_E_NOTFOUND, "cloud '%s': no %s named \"%.200s\"", a->cloud, what, name);
    if (n > 1)
        return FC_ERR(FC_E_CONFLICT, "cloud '%s': %zu %ss are named \"%.200s\": give the id",
                      a->cloud, n, what, name);
    return FC_OK;
}

static bool
looks_like_uuid(const char *s)
{
    size_t n = strlen(s);
    if (n != 36 && n != 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '-' || (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

fc_rc
osa_resolve(struct osa *a, enum fc_os_service svc, const char *list_path,
            const char *item_prefix, const char *key, const char *one_key,
            const char *id_or_name, const char *what, json_t **out)
{
    *out = NULL;
    if (looks_like_uuid(id_or_name)) {
        char path[512];
        json_t *r = NULL;
        snprintf(path, sizeof path, "%s/%s", item_prefix, id_or_name);
        fc_rc rc = fc_os_call(a->os, svc, "GET", path, NULL, NULL, &r);
        if (rc == FC_OK) {
            *out = json_incref(one_key ? json_object_get(r, one_key) : r);
            json_decref(r);
            if (!json_is_object(*out)) {
                json_decref(*out);
                *out = NULL;
                return FC_ERR(FC_E_INVALID, "cloud '%s': %s %s: reply has no object", a->cloud,
                              what, id_or_name);
            }
            return FC_OK;
        }
        if (rc != FC_E_NOTFOUND)
            return rc;
    }
    fc_rc rc = osa_find_one(a, svc, list_path, key, id_or_name, what, out);
    if (rc == FC_E_NOTFOUND)
        return FC_ERR(FC_E_NOTFOUND, "cloud '%s': no %s with id or name \"%.200s\"", a->cloud,
                      what, id_or_name);
    return rc;
}

static bool
in_list(const char *s, const char *const *l)
{
    for (; l && *l; l++)
        if (s && strcmp(s, *l) == 0)
            return true;
    return false;
}

fc_rc
osa_wait(struct osa *a, enum fc_os_service svc, const char *path, const char *key,
         const char *field, const char *const *ok, const char *const *bad, const char *what,
         json_t **last)
{
    time_t start = time(NULL);
    char state[64] = "";
    if (last)
        *last = NULL;
    for (unsigned polls = 0;; polls++) {
        if (fc_cancel_requested)
            return FC_ERR(FC_E_CANCELLED, "%s: cancelled while waiting for %s", a->action, what);
        json_t *r = NULL;
        fc_rc rc = fc_os_call(a->os, svc, "GET", path, NULL, NULL, &r);
        if (rc)
            return rc;
        json_t *o = key ? json_object_get(r, key) : r;
        const char *st = osa_js(o, field);
        snprintf(state, sizeof state, "%s", st ? st : "(none)");
        unsigned waited = (unsigned)(time(NULL) - start);
        fc_event_progress(a->m, waited, a->timeout_s,
                          json_pack("{s:s,s:s,s:s}", "unit", "seconds", "waiting_for", what,
                                    "state", state),
                          polls == 0);
        if (in_list(st, ok)) {
            if (last)
                *last = json_incref(o);
            json_decref(r);
            return FC_OK;
        }
        if (in_list(st, bad)) {
            const char *fault = osa_js(json_object_get(o, "fault"), "message");
            rc = FC_ERR(FC_E_REMOTE, "cloud '%s': %s went to state %s%s%.300s", a->cloud, what,
                        state, fault ? ": " : "", fault ? fault : "");
            json_decref(r);
            return rc;
        }
        json_decref(r);
        if (waited >= a->timeout_s)
            return FC_ERR(FC_E_TIMEOUT, "cloud '%s': %s is still %s after %u s (--timeout)",
                          a->cloud, what, state, waited);
        sleep(1);
    }
}
