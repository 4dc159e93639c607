/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers of the fluid-config integration tests: a tree of real configuration files, the
 * rules that rewrite it, the bytes expected afterwards, and running fluid-config. */
#ifndef CFG_TEST_UTIL_H
#define CFG_TEST_UTIL_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fluid/spawn.h"

/* The files of the tree (relative to its root) and what the rules make of them. */
struct tfile {
    const char *rel, *before, *after;
};
static const struct tfile tfiles[] = {
    {"conf/app.conf", "interpreter=/usr/bin/node\r\ndata=/var/lib/app\r\n# ünïcode ✓\r\n",
     "interpreter=/opt/node/bin/node\r\ndata=/mnt/data/app\r\n# ünïcode ✓\r\n"},
    {"conf/db.ini", "; db\n[db]\nhost = 10.0.0.1\nport=5432\n\n[web]\nbind = 0.0.0.0",
     "; db\n[db]\nhost = 192.168.5.7\nport=5432\nuser = app\n\n[web]"},
    {"conf/app.json",
     "{\n  \"db\": {\n    \"host\": \"10.0.0.1\",\n    \"port\": 5432\n  },\n"
     "  \"name\": \"x\"\n}\n",
     "{\n  \"db\": {\n    \"host\": \"192.168.5.7\",\n    \"port\": 5432,\n    \"user\": \"app\"\n"
     "  }\n}\n"},
    {"conf/app.yaml", "db:\n  host: 10.0.0.1 # the db\n  port: 5432\nlist:\n  - a\n  - \"b\"\n",
     "db:\n  host: 192.168.5.7 # the db\n  port: 6543\nlist:\n  - a\n  - \"c d\"\n"},
    {"conf/.env", "export A=1\nB=\"two words\" # c\n",
     "export A=\"x y\"\nB=\"three words here\" # c\nC=plain\n"},
    {"conf/sub/app.properties", "# props\nserver.host=10.0.0.1\nlong=a\\\n  b\n",
     "# props\nserver.host=192.168.5.7\nlong=short\n"},
    {"conf/site.nginx",
     "server {\n    listen 80;\n    server_name shop.old.example;\n"
     "    root /var/www/shop;\n}\n",
     "server {\n    listen 8080;\n    server_name shop.new.example;\n"
     "    root /var/www/shop;\n}\n"},
    {"README", "not a configuration file!\n", "not a configuration file!\n"},
};
#define NTFILES (sizeof tfiles / sizeof *tfiles)
#define NCHANGED (NTFILES - 1)

/* The file sets of the rules (root substituted by cfg_write_rules). */
static const char tsets[] =
    "{\"glob\":\"conf/*.conf\",\"rules\":["
    " {\"type\":\"require\",\"pattern\":\"^interpreter=\",\"flags\":\"m\"},"
    " {\"type\":\"regex\",\"pattern\":\"interpreter=.*\",\"anchor\":\"line\","
    "  \"replace\":\"interpreter=${target.node}\"},"
    " {\"type\":\"regex\",\"pattern\":\"(data)=/var/lib/app\","
    "  \"replace\":\"\\\\1=${target.volume.data.mountpoint}/app\"}]},"
    "{\"glob\":\"conf/*.ini\",\"rules\":["
    " {\"type\":\"ini\",\"section\":\"db\",\"key\":\"host\",\"set\":\"${target.ip}\"},"
    " {\"type\":\"ini\",\"section\":\"db\",\"key\":\"user\",\"set\":\"app\"},"
    " {\"type\":\"ini\",\"section\":\"web\",\"key\":\"bind\",\"delete\":true}]},"
    "{\"glob\":\"conf/*.json\",\"rules\":["
    " {\"type\":\"json\",\"pointer\":\"/db/host\",\"set\":\"${target.ip}\"},"
    " {\"type\":\"json\",\"pointer\":\"/db/user\",\"set\":\"app\"},"
    " {\"type\":\"json\",\"pointer\":\"/name\",\"delete\":true}]},"
    "{\"glob\":\"conf/*.yaml\",\"rules\":["
    " {\"type\":\"yaml\",\"path\":\"db.host\",\"set\":\"${target.ip}\"},"
    " {\"type\":\"yaml\",\"path\":\"list.1\",\"set\":\"c d\"},"
    " {\"type\":\"yaml\",\"path\":\"db.port\",\"set\":6543}]},"
    "{\"glob\":\"conf/.env\",\"rules\":["
    " {\"type\":\"env\",\"key\":\"B\",\"set\":\"three words here\"},"
    " {\"type\":\"env\",\"key\":\"A\",\"set\":\"x y\"},"
    " {\"type\":\"env\",\"key\":\"C\",\"set\":\"plain\"}]},"
    "{\"glob\":\"conf/*.nginx\",\"rules\":["
    " {\"type\":\"regex\",\"pattern\":\"listen 80;(\\\\s+)server_name shop\\\\.old\\\\.example;\","
    "  \"replace\":\"listen 8080;\\\\1server_name shop.new.example;\"}]},"
    "{\"glob\":\"**/*.properties\",\"rules\":["
    " {\"type\":\"properties\",\"key\":\"server.host\",\"set\":\"${target.ip}\"},"
    " {\"type\":\"properties\",\"key\":\"long\",\"set\":\"short\"}]}";

static const char tvars[] = "{\"target\":{\"ip\":\"192.168.5.7\",\"node\":\"/opt/node/bin/node\","
                            "\"volume\":{\"data\":{\"mountpoint\":\"/mnt/data\"}}}}";

static inline void
cfg_mkdirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
}

static inline void
cfg_write(const char *path, const char *data, size_t len)
{
    cfg_mkdirs(path);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "create %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static inline char *
cfg_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap)
            cr_assert_not_null(buf = realloc(buf, cap = 2 * cap + 8192));
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* A fresh folder under FLUID_TEST_RUN_DIR (or /tmp) holding app/ (the root) with tfiles. */
static inline void
cfg_make_tree(char *dir, size_t cap, const char *name)
{
    const char *run = getenv("FLUID_TEST_RUN_DIR");
    snprintf(dir, cap, "%s/config-%s-%d-XXXXXX", run && *run ? run : "/tmp", name, (int)getpid());
    cfg_mkdirs(dir);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp %s: %s", dir, strerror(errno));
    for (size_t i = 0; i < NTFILES; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/app/%s", dir, tfiles[i].rel);
        cfg_write(p, tfiles[i].before, strlen(tfiles[i].before));
    }
}

static inline int
cfg_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* Removes a tree made by cfg_make_tree (called at the end of a test that passed: a failed
 * test leaves its tree for inspection). */
static inline void
cfg_rm_tree(const char *dir)
{
    nftw(dir, cfg_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes DIR/rules.json with root DIR/app, the standard sets, then extra sets (may be ""). */
static inline void
cfg_write_rules(const char *dir, const char *limits, const char *extra)
{
    char *doc = NULL, p[1024];
    cr_assert(asprintf(&doc,
                       "{\"schema\":\"fluid.config-rules/1\",\"roots\":[\"%s/app\"],%s%s"
                       "\"files\":[%s%s%s]}",
                       dir, limits ? limits : "", limits ? "," : "", tsets,
                       extra && *extra ? "," : "", extra ? extra : "") > 0);
    snprintf(p, sizeof p, "%s/rules.json", dir);
    cfg_write(p, doc, strlen(doc));
    free(doc);
    snprintf(p, sizeof p, "%s/vars.json", dir);
    cfg_write(p, tvars, strlen(tvars));
}

struct cfg_out {
    char out[1 << 16], err[1 << 14];
    int status; /* exit status, or -1 */
};

/* Runs fluid-config with the NULL-ended args after the program name. */
static inline void
cfg_exec(struct cfg_out *o, const char *const *args)
{
    const char *bin = getenv("FLUID_BIN_DIR");
    cr_assert_not_null(bin, "FLUID_BIN_DIR is not set (run through ctest)");
    char prog[1024];
    snprintf(prog, sizeof prog, "%s/fluid-config", bin);
    const char *argv[64] = {prog};
    size_t n = 1;
    for (; args[n - 1] && n < 63; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    int st = 0;
    cr_assert_eq(fc_run(argv, o->out, sizeof o->out, o->err, sizeof o->err, &st), FC_OK);
    o->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Snapshot of a tree's files (bytes, inode, mtime) to prove nothing was written. */
struct snap {
    char *bytes[NTFILES];
    size_t len[NTFILES];
    ino_t ino[NTFILES];
    struct timespec mtime[NTFILES];
};

static inline void
cfg_snap(const char *dir, struct snap *s)
{
    for (size_t i = 0; i < NTFILES; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/app/%s", dir, tfiles[i].rel);
        s->bytes[i] = cfg_slurp(p, &s->len[i]);
        struct stat st;
        cr_assert_eq(stat(p, &st), 0);
        s->ino[i] = st.st_ino;
        s->mtime[i] = st.st_mtim;
    }
}

static inline void
cfg_snap_same(const char *dir, const struct snap *s)
{
    struct snap now;
    cfg_snap(dir, &now);
    for (size_t i = 0; i < NTFILES; i++) {
        cr_assert(now.len[i] == s->len[i] && memcmp(now.bytes[i], s->bytes[i], s->len[i]) == 0,
                  "%s changed", tfiles[i].rel);
        cr_assert_eq(now.ino[i], s->ino[i], "%s was replaced", tfiles[i].rel);
        cr_assert(now.mtime[i].tv_sec == s->mtime[i].tv_sec &&
                      now.mtime[i].tv_nsec == s->mtime[i].tv_nsec,
                  "%s was written", tfiles[i].rel);
        free(now.bytes[i]);
    }
}

static inline void
cfg_snap_free(struct snap *s)
{
    for (size_t i = 0; i < NTFILES; i++)
        free(s->bytes[i]);
}

/* Every file of the tree holds its expected bytes after a run (after = true) or before. */
static inline void
cfg_expect_tree(const char *dir, bool after)
{
    for (size_t i = 0; i < NTFILES; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/app/%s", dir, tfiles[i].rel);
        size_t n;
        char *b = cfg_slurp(p, &n);
        const char *want = after ? tfiles[i].after : tfiles[i].before;
        cr_assert(n == strlen(want) && memcmp(b, want, n) == 0, "%s: got\n%s\nwant\n%s",
                  tfiles[i].rel, b, want);
        free(b);
    }
}

static inline size_t
cfg_count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

#endif
