/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config's engine: rules (parsed from the rules JSON), variables, the edits each rule
 * type makes on a file's bytes, unified diffs, and the targets (local files, SFTP) that a
 * run reads and writes all-or-nothing. Internal to migrators/config and its tests. */
#ifndef FLUID_CFG_H
#define FLUID_CFG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fluid/rc.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Defaults of the "limits" object of a rule set (docs/config.md). */
#define CFG_MAX_FILE_BYTES (16u << 20) /* a larger file is refused */
#define CFG_MATCH_LIMIT 10000000u      /* PCRE2 match limit (backtracking steps) per attempt */
#define CFG_HEAP_LIMIT_KIB 65536u      /* PCRE2 heap limit per attempt */
#define CFG_MAX_MATCHES 1000000u       /* matches per rule and file */
#define CFG_MAX_FILES 10000u           /* files per run */

/* A growable byte buffer (not NUL-terminated unless cfg_buf_str is called). */
struct cfg_buf {
    char *p;
    size_t len, cap;
};
fc_rc cfg_buf_add(struct cfg_buf *b, const void *p, size_t n);
fc_rc cfg_buf_adds(struct cfg_buf *b, const char *s);
fc_rc cfg_buf_addf(struct cfg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *cfg_buf_str(struct cfg_buf *b); /* NUL-terminates; NULL on out of memory */
void cfg_buf_free(struct cfg_buf *b);

/* ---- variables ---------------------------------------------------------------------- */

/* Variables: a JSON object; ${a.b.c} walks it (array elements by index). */
struct cfg_vars {
    json_t *root;
};
void cfg_vars_init(struct cfg_vars *v);
void cfg_vars_free(struct cfg_vars *v);
/* Merges a JSON object file (later values win). FC_E_INVALID names the file and line. */
fc_rc cfg_vars_load_file(struct cfg_vars *v, const char *path);
/* Merges a JSON object (borrowed). */
fc_rc cfg_vars_merge(struct cfg_vars *v, json_t *obj);
/* KEY=VALUE with a dotted KEY; VALUE is a string. */
fc_rc cfg_vars_set_arg(struct cfg_vars *v, const char *arg);
/* The value of a dotted name as text (strings as is, numbers and booleans in JSON), or NULL. */
char *cfg_vars_lookup(const struct cfg_vars *v, const char *name);

enum cfg_expand_mode {
    CFG_X_TEXT,     /* values inserted as they are */
    CFG_X_REGEX,    /* values inserted as literal text in a PCRE2 pattern */
    CFG_X_TEMPLATE, /* values inserted as literal text in a replacement template */
};
/* Expands ${dotted.name} in s ($${ gives a literal ${). An undefined variable is
 * FC_E_INVALID "<where>: undefined variable ${name}". *out is malloc'd. */
fc_rc cfg_expand(const struct cfg_vars *v, const char *s, enum cfg_expand_mode mode,
                 const char *where, char **out);

/* ---- rules -------------------------------------------------------------------------- */

enum cfg_rule_type { CFG_REGEX, CFG_REQUIRE, CFG_INI, CFG_ENV, CFG_PROPS, CFG_JSON, CFG_YAML };

/* One piece of a replacement template: literal bytes, or a capture group. */
struct cfg_tpl_part {
    const char *lit; /* NULL for a group */
    size_t len;
    uint32_t group;
};

struct cfg_limits {
    uint64_t max_file_bytes, match_limit, heap_limit_kib, max_matches;
};

struct cfg_rule {
    enum cfg_rule_type type;
    char *id; /* "files[0].rules[2] (regex)" or the rule's name: used in every message */
    /* regex, require */
    pcre2_code *re;       /* UTF mode, matched with PCRE2_NO_UTF_CHECK on valid UTF-8 */
    pcre2_code *re_bytes; /* the same for a file that is not valid UTF-8 */
    char *tpl_src;
    struct cfg_tpl_part *tpl;
    size_t ntpl;
    uint64_t count; /* 0: all */
    /* ini, env, properties */
    char *section; /* ini: NULL = before the first section */
    char *key;
    char *value; /* NULL with del */
    bool del;
    /* json */
    char *pointer;
    json_t *jvalue; /* NULL with del */
    /* yaml */
    char **path;
    size_t npath;
    json_t *yvalue; /* a scalar: string, number, boolean or null */
};

struct cfg_fileset {
    char *glob; /* absolute, or relative to each root */
    bool required;
    struct cfg_rule *rules;
    size_t nrules;
    size_t matched; /* files of this run that matched (set by the run) */
};

struct cfg_rules {
    char **roots; /* absolute, normalised, no trailing '/' (except "/") */
    size_t nroots;
    struct cfg_fileset *sets;
    size_t nsets;
    struct cfg_limits limits;
};

/* Parses and checks a rule set (a JSON document as bytes), expanding variables. Every
 * error is FC_E_INVALID naming the rule ("files[0].rules[2] (regex)") and what is wrong. */
fc_rc cfg_rules_parse(struct cfg_rules *r, const char *json, size_t len,
                      const struct cfg_vars *vars);
fc_rc cfg_rules_load(struct cfg_rules *r, const char *path, const struct cfg_vars *vars);
void cfg_rules_free(struct cfg_rules *r);
/* "regex", "require", ... or NULL past the last type. */
const char *cfg_rule_type_name(enum cfg_rule_type t);
/* The fields a rule of type `which` accepts (NULL-ended); -1: the top-level object, -2:
 * limits, -3: a file set; NULL for any other value. For the documentation tests. */
const char *const *cfg_rule_fields(int which);

/* Glob with '*', '?', '[...]' within a path segment and '**' across segments. */
bool cfg_glob_match(const char *glob, const char *path);
/* Lexically normalises an absolute path ("//" and "/./" folded, trailing '/' removed);
 * a ".." component or a relative path is FC_E_INVALID naming what. */
fc_rc cfg_path_normalise(const char *path, const char *what, char **out);
/* The root of r that contains the normalised path, or NULL. */
const char *cfg_root_of(const struct cfg_rules *r, const char *path);
/* Whether path is root or below it (both normalised). */
bool cfg_path_under(const char *path, const char *root);

/* ---- edits on a file's bytes -------------------------------------------------------- */

/* Applies one rule to in (the file named path, for messages), writing the result to out.
 * *changed says whether out differs from in. Errors name the rule and the file. */
fc_rc cfg_apply_rule(const struct cfg_rule *rule, const struct cfg_limits *lim, const char *path,
                     const char *in, size_t len, struct cfg_buf *out);
/* Applies every rule of every set whose glob matches (in order) to the content. */
fc_rc cfg_apply_all(struct cfg_rules *r, const char *path, const char *in, size_t len,
                    struct cfg_buf *out, size_t *nrules_applied);

fc_rc cfg_regex_apply(const struct cfg_rule *rule, const struct cfg_limits *lim, const char *path,
                      const char *in, size_t len, struct cfg_buf *out);
fc_rc cfg_kv_apply(const struct cfg_rule *rule, const char *path, const char *in, size_t len,
                   struct cfg_buf *out);
fc_rc cfg_json_apply(const struct cfg_rule *rule, const char *path, const char *in, size_t len,
                     struct cfg_buf *out);
fc_rc cfg_yaml_apply(const struct cfg_rule *rule, const char *path, const char *in, size_t len,
                     struct cfg_buf *out);

/* Whether s[0..n) is valid UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF). */
bool cfg_utf8_valid(const char *s, size_t n);

/* The line ending a file uses ("\r\n" when its first line ends so, else "\n"). */
const char *cfg_eol_of(const char *in, size_t len);

/* ---- diff --------------------------------------------------------------------------- */

/* Appends a unified diff (3 lines of context, "a/" and "b/" labels made from label) of
 * old -> new to out; nothing when they are equal. */
fc_rc cfg_diff(const char *label, const char *old, size_t oldlen, const char *new_, size_t newlen,
               struct cfg_buf *out);

/* ---- targets ------------------------------------------------------------------------ */

/* A file of a run, read whole, and what is needed to replace it atomically. */
struct cfg_target;
struct cfg_file {
    struct cfg_target *t;
    char *path;    /* the path as named (under a root) */
    char *real;    /* after symlinks: where the bytes live (under the same root) */
    char *display; /* for messages and diffs: path, or sftp://host/path */
    struct cfg_buf old, new_;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    uint64_t mtime_ns, ino, dev;
    char *tmp; /* the staged temporary file, or NULL */
    bool changed;
};

struct cfg_target;
struct cfg_target_ops {
    const char *name;
    /* realpath() of an existing path (absolute, symlinks resolved). */
    fc_rc (*resolve)(struct cfg_target *t, const char *path, char **real);
    /* Kind of an existing path without following a final symlink: 'f', 'd', 'l', 'o'. */
    fc_rc (*kind)(struct cfg_target *t, const char *path, char *kind);
    /* Calls fn for each entry name of a directory (not "." or ".."). */
    fc_rc (*list)(struct cfg_target *t, const char *dir, fc_rc (*fn)(void *ctx, const char *name),
                  void *ctx);
    /* Reads f->real (a regular file of at most max bytes) into f->old with its metadata. */
    fc_rc (*read)(struct cfg_target *t, struct cfg_file *f, uint64_t max);
    /* Writes data to a new temporary file beside dst with the metadata of f (starting its
     * write-back); returns its name in *tmp. */
    fc_rc (*stage)(struct cfg_target *t, const struct cfg_file *f, const char *dst,
                   const char *data, size_t len, char **tmp);
    /* Makes a staged file durable (fsync); NULL when stage already did. Called for every
     * staged file after all are staged, so that their write-back overlaps. */
    fc_rc (*sync)(struct cfg_target *t, const char *tmp);
    /* Fails if f->real changed since read (size, mtime, inode). */
    fc_rc (*check)(struct cfg_target *t, const struct cfg_file *f);
    /* Renames tmp over dst (atomic). */
    fc_rc (*commit)(struct cfg_target *t, const char *tmp, const char *dst);
    /* Makes the renames in the folder of path durable (fsync); NULL when not needed.
     * Called once per folder after every rename. */
    void (*sync_dir)(struct cfg_target *t, const char *path);
    /* Removes a staged temporary file (best effort). */
    void (*discard)(struct cfg_target *t, const char *tmp);
    void (*close)(struct cfg_target *t);
};
struct cfg_target {
    const struct cfg_target_ops *ops;
    char *prefix; /* "" for local files, "sftp://user@host:port" for SFTP */
    void *priv;
};

/* The local file system. */
fc_rc cfg_target_local(struct cfg_target **out);
/* SSH settings of SFTP targets (fluid-config --identity, --known-hosts); NULL: defaults. */
struct cfg_ssh_opts {
    const char *identity, *known_hosts;
};
extern struct cfg_ssh_opts cfg_ssh_opts;
/* An SFTP server named by url (sftp://[user@]host[:port]/path), through fluid_ssh: the host
 * key must be known; *path points into url. Built only when fluid_ssh exists. */
fc_rc cfg_target_sftp(const char *url, struct cfg_target **out, const char **path);

/* ---- a run -------------------------------------------------------------------------- */

struct cfg_run_opts {
    bool dry_run;
    const char *backup_suffix; /* NULL: no backup */
    bool check_idempotent;     /* apply twice; a change or failure on the 2nd pass fails */
};

struct cfg_run {
    struct cfg_file *files;
    size_t nfiles;
    struct cfg_buf diff; /* the dry run's unified diff */
};

/* A path named on the command line, on its target. */
struct cfg_target_path {
    struct cfg_target *t;
    const char *path;
};

/* Collects the files named (files, or folders walked for files that a glob matches),
 * checks them against the roots, reads them and applies the rules; then, unless dry_run,
 * stages every changed file and renames them all. Nothing is written when any rule or file
 * fails, or when a staged file cannot be made. */
fc_rc cfg_run(struct cfg_rules *r, const struct cfg_target_path *tp, size_t n,
              const struct cfg_run_opts *o, struct cfg_run *run);
void cfg_run_free(struct cfg_run *run);

#endif
