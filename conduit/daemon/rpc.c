/* SPDX-License-Identifier: Apache-2.0 */
/* fluid.conduit-request/1 (rpc.h): its strict parser and emitter. */
#include "rpc.h"

#include <stdio.h>
#include <string.h>

#include "fluid/error.h"

static fc_rc
field(const json_t *j, const char *key, char *out, size_t cap, bool id)
{
    const json_t *v = json_object_get(j, key);
    const char *s = json_string_value(v);
    if (!s)
        return FC_ERR(FC_E_INVALID, "%s: %s", key, v ? "expected a string" : "missing");
    size_t n = strlen(s);
    if (n == 0 || n >= cap)
        return FC_ERR(FC_E_INVALID, "%s: expected 1 to %zu bytes", key, cap - 1);
    if (id && !fc_id_valid(s))
        return FC_ERR(FC_E_INVALID, "%s: \"%.64s\" is not a valid id", key, s);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return FC_ERR(FC_E_INVALID, "%s: control character at offset %zu", key, i);
    memcpy(out, s, n + 1);
    return FC_OK;
}

fc_rc
fc_creq_parse(const char *buf, size_t len, struct fc_creq *out)
{
    memset(out, 0, sizeof *out);
    json_t *j = NULL;
    fc_rc rc = fc_msg_load(buf, len, &j);
    if (rc != FC_OK)
        return rc;
    const char *schema = json_string_value(json_object_get(j, "schema"));
    const char *k;
    json_t *v;
    if (!json_is_object(j) || !schema || strcmp(schema, FC_CONDUIT_SCHEMA_CREQ) != 0)
        rc = FC_ERR(FC_E_INVALID, "schema: expected \"%s\"", FC_CONDUIT_SCHEMA_CREQ);
    json_object_foreach(j, k, v) {
        if (rc == FC_OK && strcmp(k, "schema") && strcmp(k, "relocation_id") &&
            strcmp(k, "correlation_id") && strcmp(k, "reply_to") && strcmp(k, "action"))
            rc = FC_ERR(FC_E_INVALID, "%.64s: unknown field", k);
    }
    if (rc == FC_OK)
        rc = field(j, "relocation_id", out->relocation_id, sizeof out->relocation_id, true);
    if (rc == FC_OK)
        rc = field(j, "correlation_id", out->correlation_id, sizeof out->correlation_id, true);
    if (rc == FC_OK)
        rc = field(j, "reply_to", out->reply_to, sizeof out->reply_to, false);
    if (rc == FC_OK)
        rc = field(j, "action", out->action, sizeof out->action, false);
    if (rc == FC_OK && strcmp(out->action, "info") != 0 && strcmp(out->action, "cleanup") != 0 &&
        strcmp(out->action, "resume") != 0)
        rc = FC_ERR(FC_E_INVALID, "action: \"%s\" is not info, cleanup or resume", out->action);
    json_decref(j);
    return rc;
}

json_t *
fc_creq_to_json(const struct fc_creq *q)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s}", "schema", FC_CONDUIT_SCHEMA_CREQ, "relocation_id",
                     q->relocation_id, "correlation_id", q->correlation_id, "reply_to",
                     q->reply_to, "action", q->action);
}

void
fc_task_step(const char *task_id, char *out, size_t cap)
{
    const char *dash = strncmp(task_id, "t-", 2) == 0 ? strrchr(task_id, '-') : NULL;
    if (dash && dash > task_id + 2)
        snprintf(out, cap, "%.*s", (int)(dash - task_id - 2), task_id + 2);
    else if (cap)
        out[0] = '\0';
}
