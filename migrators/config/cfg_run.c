/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config runs: collect the files (under the declared roots only, no symlink leaving
 * its root), compute every file's new content first, check the rules are idempotent, then
 * either print a unified diff (dry run) or stage every changed file and rename them all:
 * a failing rule or file means nothing is written. */
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "fluid/error.h"
#include "fluid/log.h"

fc_rc
cfg_apply_rule(const struct cfg_rule *rule, const struct cfg_limits *lim, const char *path,
               const char *in, size_t len, struct cfg_buf *out)
{
    fc_rc rc;
    switch (rule->type) {
    case CFG_REGEX:
    case CFG_REQUIRE:
        rc = cfg_regex_apply(rule, lim, path, in, len, out);
        break;
    case CFG_INI:
    case CFG_ENV:
    case CFG_PROPS:
        rc = cfg_kv_apply(rule, path, in, len, out);
        break;
    case CFG_JSON:
        rc = cfg_json_apply(rule, path, in, len, out);
        break;
    case CFG_YAML:
        rc = cfg_yaml_apply(rule, path, in, len, out);
        break;
    default:
        rc = FC_ERR(FC_E_INTERNAL, "%s: unknown rule type", rule->id);
    }
    if (rc != FC_OK)
        fc_error_prefix("%s", path);
    return rc;
}

/* The path as a glob sees it: relative to its root, or absolute for a glob with a '/'. */
static bool
set_matches(const struct cfg_fileset *fs, const char *root, const char *path)
{
    if (fs->glob[0] == '/')
        return cfg_glob_match(fs->glob, path);
    const char *rel = path + strlen(root);
    while (*rel == '/')
        rel++;
    return cfg_glob_match(fs->glob, rel);
}

static bool
any_set_matches(const struct cfg_rules *r, const char *root, const char *path)
{
    for (size_t i = 0; i < r->nsets; i++)
        if (set_matches(&r->sets[i], root, path))
            return true;
    return false;
}

/* Applies the rules of every matching set; *first_change (if not NULL) gets the first rule
 * that changed the content. */
static fc_rc
apply_all(struct cfg_rules *r, const char *root, const char *path, const char *display,
          const char *in, size_t len, struct cfg_buf *out, const struct cfg_rule **first_change,
          bool count)
{
    struct cfg_buf cur = {0}, next = {0};
    fc_rc rc = cfg_buf_add(&cur, in, len);
    for (size_t i = 0; i < r->nsets && rc == FC_OK; i++) {
        struct cfg_fileset *fs = &r->sets[i];
        if (!set_matches(fs, root, path))
            continue;
        if (count)
            fs->matched++;
        for (size_t j = 0; j < fs->nrules && rc == FC_OK; j++) {
            next.len = 0;
            rc = cfg_apply_rule(&fs->rules[j], &r->limits, display, cur.p ? cur.p : "", cur.len,
                                &next);
            if (rc == FC_OK && first_change && !*first_change &&
                (next.len != cur.len ||
                 memcmp(next.p ? next.p : "", cur.p ? cur.p : "", cur.len) != 0))
                *first_change = &fs->rules[j];
            struct cfg_buf t = cur;
            cur = next;
            next = t;
        }
    }
    cfg_buf_free(&next);
    if (rc != FC_OK) {
        cfg_buf_free(&cur);
        return rc;
    }
    *out = cur;
    return FC_OK;
}

fc_rc
cfg_apply_all(struct cfg_rules *r, const char *path, const char *in, size_t len,
              struct cfg_buf *out, size_t *nrules_applied)
{
    const char *root = cfg_root_of(r, path);
    if (!root)
        return FC_ERR(FC_E_INVALID, "%s: outside the declared roots", path);
    size_t n = 0;
    for (size_t i = 0; i < r->nsets; i++)
        if (set_matches(&r->sets[i], root, path))
            n += r->sets[i].nrules;
    if (nrules_applied)
        *nrules_applied = n;
    return apply_all(r, root, path, path, in, len, out, NULL, false);
}

/* ---- collecting the files ----------------------------------------------------------- */

struct collect {
    struct cfg_rules *r;
    struct cfg_run *run;
    struct cfg_target *t;
    const char *root;
    char *realroot;
    const char *dir;
    unsigned depth;
};

static fc_rc
add_file(struct collect *c, const char *path, bool named)
{
    if (!any_set_matches(c->r, c->root, path)) {
        if (named)
            return FC_ERR(FC_E_INVALID, "%s%s: no \"files\" glob of the rules matches it",
                          c->t->prefix, path);
        return FC_OK;
    }
    char *real = NULL;
    fc_rc rc = c->t->ops->resolve(c->t, path, &real);
    if (rc != FC_OK)
        return rc;
    char rk = 'o';
    if (c->t->ops->kind(c->t, real, &rk) == FC_OK && rk == 'd') {
        fc_rc drc = named ? FC_ERR(FC_E_INVALID,
                                   "%s%s: a symlink to a folder: name the folder "
                                   "itself",
                                   c->t->prefix, path)
                          : FC_OK; /* symlinked folders are not followed */
        free(real);
        return drc;
    }
    if (!cfg_path_under(real, c->realroot)) {
        rc = FC_ERR(FC_E_INVALID,
                    "%s%s: refused: a symlink leaves the root %s (it resolves "
                    "to %s)",
                    c->t->prefix, path, c->root, real);
        free(real);
        return rc;
    }
    for (size_t i = 0; i < c->run->nfiles; i++) {
        const struct cfg_file *o = &c->run->files[i];
        if (strcmp(o->t->prefix, c->t->prefix) == 0 && strcmp(o->real, real) == 0) {
            free(real); /* the same file named twice (or through a symlink): once */
            return FC_OK;
        }
    }
    if (c->run->nfiles >= CFG_MAX_FILES) {
        free(real);
        return FC_ERR(FC_E_INVALID, "more than %u files in one run", CFG_MAX_FILES);
    }
    struct cfg_file *nf = realloc(c->run->files, (c->run->nfiles + 1) * sizeof *nf);
    if (!nf) {
        free(real);
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    c->run->files = nf;
    struct cfg_file *f = &nf[c->run->nfiles++];
    memset(f, 0, sizeof *f);
    f->t = c->t;
    f->real = real;
    f->path = strdup(path);
    if (asprintf(&f->display, "%s%s", c->t->prefix, path) < 0)
        f->display = NULL;
    if (!f->path || !f->display)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    return FC_OK;
}

static fc_rc walk(struct collect *c, const char *dir);

static fc_rc
walk_entry(struct collect *c, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s%s%s", c->dir, strcmp(c->dir, "/") ? "/" : "", name) < 0)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    char kind = 'o';
    fc_rc rc = c->t->ops->kind(c->t, p, &kind);
    if (rc == FC_OK && kind == 'd') {
        rc = walk(c, p);
    } else if (rc == FC_OK && (kind == 'f' || kind == 'l')) {
        rc = add_file(c, p, false);
    } else if (rc == FC_OK && any_set_matches(c->r, c->root, p)) {
        rc = FC_ERR(FC_E_INVALID, "%s%s: refused: not a regular file (device, FIFO or socket)",
                    c->t->prefix, p);
    }
    free(p);
    return rc;
}

struct names {
    char **v;
    size_t n;
};

static fc_rc
add_name(void *ctx, const char *name)
{
    struct names *ns = ctx;
    if (ns->n >= CFG_MAX_FILES * 4)
        return FC_ERR(FC_E_INVALID, "a folder with more than %u entries", CFG_MAX_FILES * 4);
    char **v = realloc(ns->v, (ns->n + 1) * sizeof *v);
    if (!v || !(v[ns->n] = strdup(name))) {
        if (v)
            ns->v = v;
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    ns->v = v;
    ns->n++;
    return FC_OK;
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walks a folder in name order (the same order locally and over SFTP). */
static fc_rc
walk(struct collect *c, const char *dir)
{
    if (c->depth >= 64)
        return FC_ERR(FC_E_INVALID, "%s%s: folders nested deeper than 64 levels", c->t->prefix,
                      dir);
    struct names ns = {0};
    fc_rc rc = c->t->ops->list(c->t, dir, add_name, &ns);
    if (ns.n > 1)
        qsort(ns.v, ns.n, sizeof *ns.v, name_cmp);
    const char *saved = c->dir;
    c->dir = dir;
    c->depth++;
    for (size_t i = 0; i < ns.n && rc == FC_OK; i++)
        rc = walk_entry(c, ns.v[i]);
    c->depth--;
    c->dir = saved;
    for (size_t i = 0; i < ns.n; i++)
        free(ns.v[i]);
    free(ns.v);
    return rc;
}

static fc_rc
collect_one(struct cfg_rules *r, struct cfg_run *run, const struct cfg_target_path *tp)
{
    char *path = NULL;
    char what[64];
    snprintf(what, sizeof what, "target %s", tp->t->prefix[0] ? tp->t->prefix : "path");
    fc_rc rc = cfg_path_normalise(tp->path, what, &path);
    if (rc != FC_OK)
        return rc;
    struct collect c = {.r = r, .run = run, .t = tp->t, .root = cfg_root_of(r, path)};
    char kind = 'o';
    if (!c.root) {
        rc = FC_ERR(FC_E_INVALID, "%s%s: refused: outside the roots the rules declare",
                    tp->t->prefix, path);
    } else if ((rc = tp->t->ops->resolve(tp->t, c.root, &c.realroot)) != FC_OK) {
        fc_error_prefix("root");
    } else if ((rc = tp->t->ops->kind(tp->t, path, &kind)) != FC_OK) {
        /* named and missing */
    } else if (kind == 'd') {
        rc = walk(&c, path);
    } else if (kind == 'f' || kind == 'l') {
        rc = add_file(&c, path, true);
    } else {
        rc = FC_ERR(FC_E_INVALID, "%s%s: refused: not a regular file (device, FIFO or socket)",
                    tp->t->prefix, path);
    }
    free(c.realroot);
    free(path);
    return rc;
}

/* ---- the run ------------------------------------------------------------------------ */

static void
discard_all(struct cfg_run *run, char **backups)
{
    for (size_t i = 0; i < run->nfiles; i++) {
        struct cfg_file *f = &run->files[i];
        if (f->tmp)
            f->t->ops->discard(f->t, f->tmp);
        free(f->tmp);
        f->tmp = NULL;
        if (backups && backups[i])
            f->t->ops->discard(f->t, backups[i]);
        if (backups)
            free(backups[i]), backups[i] = NULL;
    }
}

/* After a failed rename: puts the old content back into the files already replaced (a file
 * is replaced when it changed and its temporary file is gone). Returns how many were. */
static size_t
rollback(struct cfg_run *run)
{
    size_t n = 0;
    struct fc_error saved = *fc_error_last();
    for (size_t i = 0; i < run->nfiles; i++) {
        struct cfg_file *f = &run->files[i];
        char *tmp = NULL;
        if (!f->changed || f->tmp)
            continue;
        if (f->t->ops->stage(f->t, f, f->real, f->old.p ? f->old.p : "", f->old.len, &tmp) ==
                FC_OK &&
            (!f->t->ops->sync || f->t->ops->sync(f->t, tmp) == FC_OK) &&
            f->t->ops->commit(f->t, tmp, f->real) == FC_OK) {
            n++;
            f->changed = false;
        } else if (tmp) {
            f->t->ops->discard(f->t, tmp);
        }
        free(tmp);
    }
    FC_ERR(saved.rc, "%s", saved.msg);
    return n;
}

static fc_rc
write_all(struct cfg_run *run, const struct cfg_run_opts *o)
{
    char **backups = calloc(run->nfiles + 1, sizeof *backups);
    if (!backups)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    fc_rc rc = FC_OK;
    /* 1. stage every new file (and backup) */
    for (size_t i = 0; i < run->nfiles && rc == FC_OK; i++) {
        struct cfg_file *f = &run->files[i];
        if (!f->changed)
            continue;
        rc = f->t->ops->stage(f->t, f, f->real, f->new_.p, f->new_.len, &f->tmp);
        if (rc == FC_OK && o->backup_suffix)
            rc = f->t->ops->stage(f->t, f, f->real, f->old.p ? f->old.p : "", f->old.len,
                                  &backups[i]);
    }
    /* 2. all durable (their write-back started at stage, so the waits overlap) */
    for (size_t i = 0; i < run->nfiles && rc == FC_OK; i++) {
        struct cfg_file *f = &run->files[i];
        if (f->changed && f->t->ops->sync) {
            rc = f->t->ops->sync(f->t, f->tmp);
            if (rc == FC_OK && backups[i])
                rc = f->t->ops->sync(f->t, backups[i]);
        }
    }
    /* 3. nothing changed under us */
    for (size_t i = 0; i < run->nfiles && rc == FC_OK; i++)
        if (run->files[i].changed)
            rc = run->files[i].t->ops->check(run->files[i].t, &run->files[i]);
    if (rc != FC_OK) {
        discard_all(run, backups);
        free(backups);
        fc_error_prefix("nothing was written");
        return rc;
    }
    /* 4. rename them all, then make the renames durable, once per folder */
    size_t done = 0;
    for (size_t i = 0; i < run->nfiles && rc == FC_OK; i++) {
        struct cfg_file *f = &run->files[i];
        if (!f->changed)
            continue;
        if (backups[i]) {
            char *bk = NULL;
            if (asprintf(&bk, "%s%s", f->real, o->backup_suffix) < 0)
                rc = FC_ERR(FC_E_NOMEM, "out of memory");
            else
                rc = f->t->ops->commit(f->t, backups[i], bk);
            free(bk);
            if (rc == FC_OK)
                free(backups[i]), backups[i] = NULL;
        }
        if (rc == FC_OK && (rc = f->t->ops->commit(f->t, f->tmp, f->real)) == FC_OK) {
            free(f->tmp), f->tmp = NULL;
            done++;
        }
    }
    for (size_t i = 0; i < run->nfiles; i++) {
        struct cfg_file *f = &run->files[i];
        if (!f->changed || f->tmp || !f->t->ops->sync_dir)
            continue;
        bool seen = false;
        size_t dl = (size_t)(strrchr(f->real, '/') - f->real);
        for (size_t j = 0; j < i && !seen; j++) {
            struct cfg_file *g = &run->files[j];
            seen = g->changed && !g->tmp && g->t == f->t &&
                   strrchr(g->real, '/') - g->real == (ptrdiff_t)dl &&
                   strncmp(g->real, f->real, dl) == 0;
        }
        if (!seen)
            f->t->ops->sync_dir(f->t, f->real);
    }
    if (rc != FC_OK) {
        size_t undone = rollback(run); /* before discard_all forgets which were staged */
        discard_all(run, backups);
        fc_error_prefix("%zu file(s) were replaced before this failure, %zu put back", done,
                        undone);
    }
    free(backups);
    return rc;
}

fc_rc
cfg_run(struct cfg_rules *r, const struct cfg_target_path *tp, size_t n,
        const struct cfg_run_opts *o, struct cfg_run *run)
{
    memset(run, 0, sizeof *run);
    fc_rc rc = FC_OK;
    for (size_t i = 0; i < r->nsets; i++)
        r->sets[i].matched = 0;
    for (size_t i = 0; i < n && rc == FC_OK; i++)
        rc = collect_one(r, run, &tp[i]);
    /* read and compute everything before writing anything */
    for (size_t i = 0; i < run->nfiles && rc == FC_OK; i++) {
        struct cfg_file *f = &run->files[i];
        const char *root = cfg_root_of(r, f->path);
        if ((rc = f->t->ops->read(f->t, f, r->limits.max_file_bytes)) != FC_OK)
            break;
        const char *old = f->old.p ? f->old.p : "";
        if ((rc = apply_all(r, root, f->path, f->display, old, f->old.len, &f->new_, NULL, true)) !=
            FC_OK)
            break;
        f->changed =
            f->new_.len != f->old.len || memcmp(f->new_.p ? f->new_.p : "", old, f->old.len) != 0;
        if (o->check_idempotent && f->changed) {
            struct cfg_buf again = {0};
            const struct cfg_rule *culprit = NULL;
            rc = apply_all(r, root, f->path, f->display, f->new_.p, f->new_.len, &again, &culprit,
                           false);
            if (rc != FC_OK) {
                fc_error_prefix("the rules are not idempotent: a second run would fail");
            } else if (culprit) {
                rc = FC_ERR(FC_E_INVALID,
                            "%s: %s: the rules are not idempotent: a second run "
                            "would change the file again",
                            f->display, culprit->id);
            }
            cfg_buf_free(&again);
        }
    }
    for (size_t i = 0; i < r->nsets && rc == FC_OK; i++)
        if (r->sets[i].required && r->sets[i].matched == 0)
            rc = FC_ERR(FC_E_NOTFOUND,
                        "files[%zu]: glob \"%s\" is required but matched no "
                        "file",
                        i, r->sets[i].glob);
    if (rc != FC_OK)
        return rc;
    if (o->dry_run) {
        for (size_t i = 0; i < run->nfiles && rc == FC_OK; i++) {
            struct cfg_file *f = &run->files[i];
            if (f->changed)
                rc = cfg_diff(f->path, f->old.p ? f->old.p : "", f->old.len, f->new_.p, f->new_.len,
                              &run->diff);
        }
        return rc;
    }
    return write_all(run, o);
}

void
cfg_run_free(struct cfg_run *run)
{
    for (size_t i = 0; i < run->nfiles; i++) {
        struct cfg_file *f = &run->files[i];
        if (f->tmp)
            f->t->ops->discard(f->t, f->tmp);
        free(f->tmp);
        free(f->path);
        free(f->real);
        free(f->display);
        cfg_buf_free(&f->old);
        cfg_buf_free(&f->new_);
    }
    free(run->files);
    cfg_buf_free(&run->diff);
    memset(run, 0, sizeof *run);
}
