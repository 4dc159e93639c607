/* SPDX-License-Identifier: Apache-2.0 */
/* Plan (fluid.plan/1: tasks whose depends_on form a DAG, checked here) and
 * RelocationRequest (fluid.request/1, which may carry an explicit plan). */
#include "msg_internal.h"

#include <stdlib.h>
#include <string.h>

#define TRY(x)                                                                                 \
    do {                                                                                       \
        fc_rc rc_ = (x);                                                                       \
        if (rc_ != FC_OK)                                                                      \
            return rc_;                                                                        \
    } while (0)

static fc_rc
nomem(void)
{
    return FC_ERR(FC_E_NOMEM, "out of memory");
}

/* ---- Plan ---- */

void
fc_plan_free(struct fc_plan *p)
{
    if (!p)
        return;
    free(p->relocation_id);
    for (size_t i = 0; p->tasks && i < p->ntasks; i++)
        fc_task_free(p->tasks[i]);
    free(p->tasks);
    free(p);
}

long
fc_plan_find(const struct fc_plan *p, const char *task_id)
{
    for (size_t i = 0; i < p->ntasks; i++)
        if (strcmp(p->tasks[i]->task_id, task_id) == 0)
            return (long)i;
    return -1;
}

struct id_ix {
    const char *id;
    size_t ix;
};

static int
id_ix_cmp(const void *a, const void *b)
{
    return strcmp(((const struct id_ix *)a)->id, ((const struct id_ix *)b)->id);
}

static long
id_ix_find(const struct id_ix *m, size_t n, const char *id)
{
    struct id_ix key = {id, 0};
    const struct id_ix *hit = bsearch(&key, m, n, sizeof *m, id_ix_cmp);
    return hit ? (long)hit->ix : -1;
}

/* Depth-first search: color 0 white, 1 on the stack, 2 finished. On a back edge, fills
 * cyc[0..*ncyc) with the task indexes of the cycle. */
static bool
dfs(const struct fc_plan *p, const long *const *deps, size_t v, unsigned char *color,
    size_t *stack, size_t depth, size_t *cyc, size_t *ncyc)
{
    color[v] = 1;
    stack[depth] = v;
    for (size_t k = 0; k < p->tasks[v]->ndepends; k++) {
        size_t w = (size_t)deps[v][k];
        if (color[w] == 1) {
            size_t s = depth;
            while (stack[s] != w)
                s--;
            *ncyc = 0;
            for (size_t i = s; i <= depth; i++)
                cyc[(*ncyc)++] = stack[i];
            cyc[(*ncyc)++] = w;
            return true;
        }
        if (color[w] == 0 && dfs(p, deps, w, color, stack, depth + 1, cyc, ncyc))
            return true;
    }
    color[v] = 2;
    return false;
}

static fc_rc
plan_check_dag(struct fc_jp *jp, const struct fc_plan *p)
{
    size_t n = p->ntasks;
    fc_rc rc = FC_OK;
    long **deps = calloc(n ? n : 1, sizeof *deps);
    unsigned char *color = calloc(n ? n : 1, 1);
    size_t *stack = calloc(n + 1, sizeof *stack), *cyc = calloc(n + 2, sizeof *cyc);
    struct id_ix *m = calloc(n ? n : 1, sizeof *m);
    if (!deps || !color || !stack || !cyc || !m) {
        rc = nomem();
        goto out;
    }
    size_t old = jp_key(jp, "tasks");
    /* duplicates: sort by id (then by key) and look at neighbours; report the pair whose
     * later member comes first in the plan */
    for (int pass = 0; pass < 2 && rc == FC_OK; pass++) {
        for (size_t i = 0; i < n; i++)
            m[i] = (struct id_ix){pass ? p->tasks[i]->idempotency_key : p->tasks[i]->task_id, i};
        qsort(m, n, sizeof *m, id_ix_cmp);
        size_t best = n, other = 0;
        for (size_t i = 1; i < n; i++) {
            if (strcmp(m[i].id, m[i - 1].id) == 0) {
                size_t hi = m[i].ix > m[i - 1].ix ? m[i].ix : m[i - 1].ix;
                size_t lo = m[i].ix > m[i - 1].ix ? m[i - 1].ix : m[i].ix;
                if (hi < best) {
                    best = hi;
                    other = lo;
                }
            }
        }
        if (best < n) {
            size_t o = jp_idx(jp, best);
            if (pass == 0)
                rc = jp_err_at(jp, "task_id", FC_E_INVALID,
                               "duplicate task_id \"%s\" (also tasks[%zu])",
                               p->tasks[best]->task_id, other);
            else
                rc = jp_err_at(jp, "idempotency_key", FC_E_INVALID,
                               "duplicate idempotency_key (also tasks[%zu])", other);
            jp_pop(jp, o);
        }
    }
    /* m ends sorted by task_id for the lookups below */
    for (size_t i = 0; i < n; i++)
        m[i] = (struct id_ix){p->tasks[i]->task_id, i};
    qsort(m, n, sizeof *m, id_ix_cmp);
    for (size_t i = 0; i < n && rc == FC_OK; i++) {
        const struct fc_task *t = p->tasks[i];
        if (!(deps[i] = calloc(t->ndepends ? t->ndepends : 1, sizeof **deps))) {
            rc = nomem();
            break;
        }
        for (size_t k = 0; k < t->ndepends; k++) {
            deps[i][k] = id_ix_find(m, n, t->depends_on[k]);
            if (deps[i][k] < 0) {
                size_t o = jp_idx(jp, i);
                jp_key(jp, "depends_on");
                jp_idx(jp, k);
                rc = jp_err(jp, FC_E_INVALID, "unknown task \"%s\"", t->depends_on[k]);
                jp_pop(jp, o);
                break;
            }
        }
    }
    for (size_t i = 0; i < n && rc == FC_OK; i++) {
        size_t ncyc = 0;
        if (color[i] == 0 && dfs(p, (const long *const *)deps, i, color, stack, 0, cyc, &ncyc)) {
            char chain[400] = "";
            size_t len = 0;
            for (size_t c = 0; c < ncyc && len < sizeof chain - 1; c++)
                len += (size_t)snprintf(chain + len, sizeof chain - len, "%s%s",
                                        c ? " -> " : "", p->tasks[cyc[c]]->task_id);
            size_t o = jp_idx(jp, cyc[0]);
            rc = jp_err_at(jp, "depends_on", FC_E_INVALID, "cycle %s", chain);
            jp_pop(jp, o);
        }
    }
    jp_pop(jp, old);
out:
    for (size_t i = 0; deps && i < n; i++)
        free(deps[i]);
    free(deps);
    free(color);
    free(stack);
    free(cyc);
    free(m);
    return rc;
}

void
fc_plan_topo_order(const struct fc_plan *p, size_t *order)
{
    /* Kahn's algorithm with a stable choice: among ready tasks, the one listed first. */
    size_t n = p->ntasks, done = 0, nedges = 0;
    for (size_t i = 0; i < n; i++)
        nedges += p->tasks[i]->ndepends;
    struct id_ix *m = calloc(n ? n : 1, sizeof *m);
    size_t *indeg = calloc(n ? n : 1, sizeof *indeg), *start = calloc(n + 1, sizeof *start),
           *succ = calloc(nedges ? nedges : 1, sizeof *succ), *fill = calloc(n + 1, sizeof *fill);
    unsigned char *queued = calloc(n ? n : 1, 1);
    if (!m || !indeg || !start || !succ || !fill || !queued) {
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        m[i] = (struct id_ix){p->tasks[i]->task_id, i};
    qsort(m, n, sizeof *m, id_ix_cmp);
    /* successors of each task, in CSR form */
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < p->tasks[i]->ndepends; k++) {
            long d = id_ix_find(m, n, p->tasks[i]->depends_on[k]);
            if (d >= 0) {
                start[d + 1]++;
                indeg[i]++;
            }
        }
    for (size_t i = 0; i < n; i++)
        start[i + 1] += start[i];
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < p->tasks[i]->ndepends; k++) {
            long d = id_ix_find(m, n, p->tasks[i]->depends_on[k]);
            if (d >= 0)
                succ[start[d] + fill[d]++] = i;
        }
    /* a min-first scan over a "ready" flag array keeps the listing order among ready tasks */
    for (size_t i = 0; i < n; i++)
        queued[i] = indeg[i] == 0;
    size_t scan = 0;
    while (done < n) {
        while (scan < n && queued[scan] != 1)
            scan++;
        if (scan == n) { /* a cycle: cannot happen after the parser's check */
            for (size_t i = 0; i < n; i++)
                if (queued[i] != 2) {
                    queued[i] = 2;
                    order[done++] = i;
                }
            break;
        }
        size_t v = scan;
        queued[v] = 2;
        order[done++] = v;
        for (size_t e = start[v]; e < start[v + 1]; e++) {
            size_t w = succ[e];
            if (--indeg[w] == 0) {
                queued[w] = 1;
                if (w < scan)
                    scan = w;
            }
        }
    }
out:
    free(m);
    free(indeg);
    free(start);
    free(succ);
    free(fill);
    free(queued);
}

fc_rc
fc_plan_parse_at(struct fc_jp *jp, const json_t *j, bool in_request, const char *req_rid,
                 const char *key_base, struct fc_plan **out)
{
    static const char *const keys[] = {"schema", "relocation_id", "tasks", NULL};
    *out = NULL;
    FC_AUTO(plan) struct fc_plan *p = calloc(1, sizeof *p);
    if (!p)
        return nomem();
    TRY(j_want_object(jp, j));
    TRY(j_schema(jp, j, FC_SCHEMA_PLAN, in_request));
    TRY(j_only(jp, j, keys));
    TRY(j_str(jp, j, "relocation_id", !in_request, FC_ID_MAX, J_ID, false, NULL,
              &p->relocation_id));
    if (in_request && p->relocation_id && strcmp(p->relocation_id, req_rid) != 0)
        return jp_err_at(jp, "relocation_id", FC_E_INVALID,
                         "\"%s\" differs from the request's relocation_id \"%s\"",
                         p->relocation_id, req_rid);
    if (!p->relocation_id && !(p->relocation_id = strdup(req_rid)))
        return nomem();
    const json_t *tasks = json_object_get(j, "tasks");
    if (!tasks)
        return jp_err_at(jp, "tasks", FC_E_INVALID, "missing required field");
    if (!json_is_array(tasks))
        return jp_err_at(jp, "tasks", FC_E_INVALID, "expected an array, got %s",
                         j_type_name(tasks));
    size_t n = json_array_size(tasks);
    if (n < 1 || n > FC_TASKS_MAX)
        return jp_err_at(jp, "tasks", FC_E_INVALID, "%zu tasks: want 1 to %d", n, FC_TASKS_MAX);
    if (!(p->tasks = calloc(n, sizeof *p->tasks)))
        return nomem();
    size_t old = jp_key(jp, "tasks");
    for (size_t i = 0; i < n; i++) {
        size_t o2 = jp_idx(jp, i);
        fc_rc rc = fc_task_parse_at(jp, json_array_get(tasks, i), true, p->relocation_id,
                                    key_base ? key_base : p->relocation_id, &p->tasks[i]);
        jp_pop(jp, o2);
        if (rc != FC_OK) {
            jp_pop(jp, old);
            return rc;
        }
        p->ntasks = i + 1;
    }
    jp_pop(jp, old);
    TRY(plan_check_dag(jp, p));
    *out = FC_STEAL(&p);
    return FC_OK;
}

fc_rc
fc_plan_from_json(const json_t *j, struct fc_plan **out)
{
    struct fc_jp jp = {0};
    jp_set_error_path("");
    return fc_plan_parse_at(&jp, j, false, NULL, NULL, out);
}

fc_rc
fc_plan_parse(const char *buf, size_t len, struct fc_plan **out)
{
    *out = NULL;
    json_auto_t *j = NULL;
    TRY(fc_msg_load(buf, len, &j));
    return fc_plan_from_json(j, out);
}

json_t *
fc_plan_to_json(const struct fc_plan *p)
{
    json_t *tasks = json_array();
    for (size_t i = 0; tasks && i < p->ntasks; i++)
        json_array_append_new(tasks, fc_task_to_json(p->tasks[i]));
    return json_pack("{s:s, s:s, s:o}", "schema", FC_SCHEMA_PLAN, "relocation_id",
                     p->relocation_id, "tasks", tasks);
}

/* ---- RelocationRequest ---- */

void
fc_request_free(struct fc_request *r)
{
    if (!r)
        return;
    free(r->relocation_id);
    free(r->idempotency_key);
    free(r->source_cloud);
    free(r->target_cloud);
    fc_strv_free(r->servers, r->nservers);
    free(r->tag);
    json_decref(r->options);
    fc_plan_free(r->plan);
    free(r);
}

static fc_rc
parse_cloud_ref(struct fc_jp *jp, const json_t *j, const char *key, bool required, char **out)
{
    static const char *const keys[] = {"cloud", NULL};
    const json_t *v = json_object_get(j, key);
    if (!v) {
        if (required)
            return jp_err_at(jp, key, FC_E_INVALID, "missing required field");
        return FC_OK;
    }
    size_t old = jp_key(jp, key);
    fc_rc rc = j_want_object(jp, v);
    if (rc == FC_OK)
        rc = j_only(jp, v, keys);
    if (rc == FC_OK)
        rc = j_str(jp, v, "cloud", true, FC_NAME_MAX, J_LINE, false, NULL, out);
    jp_pop(jp, old);
    return rc;
}

static fc_rc
request_fill(struct fc_jp *jp, const json_t *j, struct fc_request *r)
{
    static const char *const keys[] = {"schema", "relocation_id", "idempotency_key", "source",
                                       "target", "selector", "options", "plan", NULL};
    static const char *const skeys[] = {"servers", "tag", NULL};
    TRY(j_want_object(jp, j));
    TRY(j_schema(jp, j, FC_SCHEMA_REQUEST, false));
    TRY(j_only(jp, j, keys));
    TRY(j_str(jp, j, "relocation_id", true, FC_ID_MAX, J_ID, false, NULL, &r->relocation_id));
    TRY(j_str(jp, j, "idempotency_key", true, FC_KEY_MAX, J_KEY, false, NULL,
              &r->idempotency_key));
    const json_t *plan = json_object_get(j, "plan");
    /* Without an explicit plan the conduit plans from the source cloud: it must be named. */
    TRY(parse_cloud_ref(jp, j, "source", !plan, &r->source_cloud));
    TRY(parse_cloud_ref(jp, j, "target", !plan, &r->target_cloud));
    const json_t *sel = json_object_get(j, "selector");
    if (sel) {
        size_t old = jp_key(jp, "selector");
        fc_rc rc = j_want_object(jp, sel);
        if (rc == FC_OK)
            rc = j_only(jp, sel, skeys);
        if (rc == FC_OK)
            rc = j_strv(jp, sel, "servers", false, FC_LIST_MAX, FC_NAME_MAX, J_LINE,
                        &r->servers, &r->nservers);
        if (rc == FC_OK)
            rc = j_str(jp, sel, "tag", false, FC_NAME_MAX, J_LINE, false, NULL, &r->tag);
        if (rc == FC_OK && r->nservers == 0 && !r->tag)
            rc = jp_err(jp, FC_E_INVALID, "names no servers and no tag");
        jp_pop(jp, old);
        TRY(rc);
    } else if (!plan) {
        return jp_err_at(jp, "selector", FC_E_INVALID,
                         "missing (required without an explicit plan)");
    }
    if (!r->servers && !(r->servers = calloc(1, sizeof *r->servers)))
        return nomem();
    const json_t *opt = json_object_get(j, "options");
    if (opt) {
        size_t old = jp_key(jp, "options");
        fc_rc rc = j_free_form(jp, opt, true);
        jp_pop(jp, old);
        TRY(rc);
        if (!(r->options = json_deep_copy(opt)))
            return nomem();
    }
    if (plan) {
        size_t old = jp_key(jp, "plan");
        fc_rc rc = fc_plan_parse_at(jp, plan, true, r->relocation_id, r->idempotency_key,
                                    &r->plan);
        jp_pop(jp, old);
        TRY(rc);
    }
    return FC_OK;
}

fc_rc
fc_request_from_json(const json_t *j, struct fc_request **out)
{
    *out = NULL;
    struct fc_jp jp = {0};
    jp_set_error_path("");
    struct fc_request *r = calloc(1, sizeof *r);
    if (!r)
        return nomem();
    fc_rc rc = request_fill(&jp, j, r);
    if (rc != FC_OK) {
        fc_request_free(r);
        return rc;
    }
    *out = r;
    return FC_OK;
}

fc_rc
fc_request_parse(const char *buf, size_t len, struct fc_request **out)
{
    *out = NULL;
    json_auto_t *j = NULL;
    TRY(fc_msg_load(buf, len, &j));
    return fc_request_from_json(j, out);
}

json_t *
fc_request_to_json(const struct fc_request *r)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "schema", FC_SCHEMA_REQUEST, "relocation_id",
                          r->relocation_id, "idempotency_key", r->idempotency_key);
    if (!o)
        return NULL;
    if (r->source_cloud)
        json_object_set_new(o, "source", json_pack("{s:s}", "cloud", r->source_cloud));
    if (r->target_cloud)
        json_object_set_new(o, "target", json_pack("{s:s}", "cloud", r->target_cloud));
    if (r->nservers || r->tag) {
        json_t *sel = json_object();
        if (r->nservers)
            json_object_set_new(sel, "servers", j_strv_json(r->servers, r->nservers));
        j_set_opt_str(sel, "tag", r->tag);
        json_object_set_new(o, "selector", sel);
    }
    if (r->options)
        json_object_set(o, "options", r->options);
    if (r->plan)
        json_object_set_new(o, "plan", fc_plan_to_json(r->plan));
    return o;
}
