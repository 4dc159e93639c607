/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config over SFTP against the real sshd of the fixture: the same rules give the same
 * bytes as locally, the same dry-run diff, an idempotent rerun, refuse a symlink escape, and
 * an unknown host key (FC_E_VERIFY) with nothing written. */
#include <dirent.h>

#include "cfg_test_util.h"
#include "fluid/error.h"

static char host[256], port[32], user[64], identity[1024], known_hosts[1024];

static void
load_env(void)
{
    const char *run = getenv("FLUID_TEST_RUN_DIR");
    if (!run)
        cr_assert_fail("FLUID_TEST_RUN_DIR is not set: run through ctest with the sshd fixture");
    char p[1024];
    snprintf(p, sizeof p, "%s/sshd.env", run);
    FILE *f = fopen(p, "r");
    if (!f)
        cr_assert_fail("%s: %s (the sshd fixture did not start)", p, strerror(errno));
    char line[1200];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq++ = '\0';
        if (strcmp(line, "SSHD_HOST") == 0)
            snprintf(host, sizeof host, "%s", eq);
        else if (strcmp(line, "SSHD_PORT") == 0)
            snprintf(port, sizeof port, "%s", eq);
        else if (strcmp(line, "SSHD_USER") == 0)
            snprintf(user, sizeof user, "%s", eq);
        else if (strcmp(line, "SSHD_IDENTITY") == 0)
            snprintf(identity, sizeof identity, "%s", eq);
        else if (strcmp(line, "SSHD_KNOWN_HOSTS") == 0)
            snprintf(known_hosts, sizeof known_hosts, "%s", eq);
    }
    fclose(f);
    if (!*host || !*port || !*identity || !*known_hosts)
        cr_assert_fail("%s lacks SSHD_HOST, SSHD_PORT, SSHD_IDENTITY or SSHD_KNOWN_HOSTS", p);
}

TestSuite(sftp, .init = load_env);

static void
no_temp_files(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/app/conf", dir);
    DIR *d = opendir(p);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        cr_assert_null(strstr(e->d_name, ".fluid-"), "temporary file left: %s", e->d_name);
    closedir(d);
}

/* Runs over SFTP on DIR/app (or with extra args); kh overrides known_hosts. */
static void
run_sftp(struct cfg_out *o, const char *dir, bool dry, const char *kh)
{
    char rules[1024], vars[1024], url[1400];
    snprintf(rules, sizeof rules, "%s/rules.json", dir);
    snprintf(vars, sizeof vars, "%s/vars.json", dir);
    snprintf(url, sizeof url, "sftp://%s@%s:%s%s/app", user, host, port, dir);
    const char *args[] = {"rewrite",
                          "--rules",
                          rules,
                          "--vars",
                          vars,
                          "--identity",
                          identity,
                          "--known-hosts",
                          kh ? kh : known_hosts,
                          dry ? "--dry-run" : url,
                          dry ? url : NULL,
                          NULL};
    cfg_exec(o, args);
}

static void
run_local(struct cfg_out *o, const char *dir, bool dry)
{
    char rules[1024], vars[1024], root[1024];
    snprintf(rules, sizeof rules, "%s/rules.json", dir);
    snprintf(vars, sizeof vars, "%s/vars.json", dir);
    snprintf(root, sizeof root, "%s/app", dir);
    const char *args[] = {"rewrite",         "--rules", rules,
                          "--vars",          vars,      dry ? "--dry-run" : root,
                          dry ? root : NULL, NULL};
    cfg_exec(o, args);
}

Test(sftp, same_bytes_as_locally_and_idempotent)
{
    char a[512], b[512];
    cfg_make_tree(a, sizeof a, "local");
    cfg_make_tree(b, sizeof b, "sftp");
    cfg_write_rules(a, NULL, NULL);
    cfg_write_rules(b, NULL, NULL);
    for (int k = 0; k < 2; k++) { /* a mode and (as root) an owner to carry over */
        char p[1024];
        snprintf(p, sizeof p, "%s/app/%s", k ? b : a, tfiles[0].rel);
        cr_assert_eq(chmod(p, 0640), 0);
        if (geteuid() == 0)
            cr_assert_eq(chown(p, 4321, 4322), 0);
    }
    struct cfg_out o;
    run_local(&o, a, false);
    cr_assert_eq(o.status, 0, "local: %s", o.err);
    run_sftp(&o, b, false, NULL);
    cr_assert_eq(o.status, 0, "sftp: %s", o.err);
    cr_assert_eq(cfg_count(o.out, "changed sftp://"), NCHANGED, "stdout: %s", o.out);
    for (size_t i = 0; i < NTFILES; i++) {
        char pa[1024], pb[1024];
        snprintf(pa, sizeof pa, "%s/app/%s", a, tfiles[i].rel);
        snprintf(pb, sizeof pb, "%s/app/%s", b, tfiles[i].rel);
        size_t na, nb;
        char *ba = cfg_slurp(pa, &na), *bb = cfg_slurp(pb, &nb);
        cr_assert(na == nb && memcmp(ba, bb, na) == 0, "%s differs: local\n%s\nsftp\n%s",
                  tfiles[i].rel, ba, bb);
        free(ba);
        free(bb);
    }
    cfg_expect_tree(b, true);
    no_temp_files(b);
    /* mode carried over SFTP */
    char pa[1024], pb[1024];
    struct stat sa, sb;
    snprintf(pa, sizeof pa, "%s/app/%s", a, tfiles[0].rel);
    snprintf(pb, sizeof pb, "%s/app/%s", b, tfiles[0].rel);
    cr_assert(stat(pa, &sa) == 0 && stat(pb, &sb) == 0);
    cr_assert_eq(sb.st_mode & 07777, 0640);
    cr_assert_eq(sa.st_mode, sb.st_mode);
    cr_assert(sa.st_uid == sb.st_uid && sa.st_gid == sb.st_gid,
              "owner %u:%u over SFTP, %u:%u "
              "locally",
              sb.st_uid, sb.st_gid, sa.st_uid, sa.st_gid);
    struct snap s;
    cfg_snap(b, &s);
    run_sftp(&o, b, false, NULL);
    cr_assert_eq(o.status, 0, "sftp rerun: %s", o.err);
    cr_assert_eq(cfg_count(o.out, "unchanged sftp://"), NCHANGED, "stdout: %s", o.out);
    cfg_snap_same(b, &s);
    cfg_snap_free(&s);
    cfg_rm_tree(a);
    cfg_rm_tree(b);
}

Test(sftp, dry_run_diff_matches_local)
{
    char a[512], b[512];
    cfg_make_tree(a, sizeof a, "dloc");
    cfg_make_tree(b, sizeof b, "dsft");
    cfg_write_rules(a, NULL, NULL);
    cfg_write_rules(b, NULL, NULL);
    struct snap s;
    cfg_snap(b, &s);
    struct cfg_out la, sb;
    run_local(&la, a, true);
    cr_assert_eq(la.status, 0, "local: %s", la.err);
    run_sftp(&sb, b, true, NULL);
    cr_assert_eq(sb.status, 0, "sftp: %s", sb.err);
    cfg_snap_same(b, &s);
    cfg_snap_free(&s);
    /* the same diff once the folder names are swapped */
    cr_assert_eq(cfg_count(la.out, a + 1), cfg_count(sb.out, b + 1));
    size_t n = strlen(sb.out);
    char *conv = malloc(2 * n + 1); /* a and b have the same length */
    cr_assert_not_null(conv);
    size_t w = 0, bl = strlen(b + 1), al = strlen(a + 1);
    for (size_t i = 0; i < n;) {
        if (strncmp(sb.out + i, b + 1, bl) == 0) {
            memcpy(conv + w, a + 1, al);
            w += al;
            i += bl;
        } else {
            conv[w++] = sb.out[i++];
        }
    }
    conv[w] = '\0';
    cr_assert_str_eq(conv, la.out);
    free(conv);
    cfg_rm_tree(a);
    cfg_rm_tree(b);
}

static void
outside_escape(const char *dir)
{
    char p[1024], t[1024];
    snprintf(t, sizeof t, "%s/outside/secret.conf", dir);
    cfg_write(t, "interpreter=/usr/bin/node\n", 26);
    snprintf(p, sizeof p, "%s/app/conf/zz-evil.conf", dir);
    cr_assert_eq(symlink(t, p), 0);
}

Test(sftp, symlink_escape_refused_nothing_written)
{
    char d[512];
    cfg_make_tree(d, sizeof d, "sescape");
    cfg_write_rules(d, NULL, NULL);
    outside_escape(d);
    struct snap s;
    cfg_snap(d, &s);
    struct cfg_out o;
    run_sftp(&o, d, false, NULL);
    cr_assert_neq(o.status, 0, "accepted: %s", o.out);
    cr_assert(strstr(o.err, "symlink leaves the root"), "%s", o.err);
    cr_assert(strstr(o.err, "sftp://"), "%s", o.err);
    cfg_snap_same(d, &s);
    cfg_snap_free(&s);
    no_temp_files(d);
    cfg_rm_tree(d);
}

Test(sftp, unknown_host_key_is_refused)
{
    char d[512], kh[1024];
    cfg_make_tree(d, sizeof d, "hostkey");
    cfg_write_rules(d, NULL, NULL);
    snprintf(kh, sizeof kh, "%s/empty_known_hosts", d);
    cfg_write(kh, "", 0);
    struct snap s;
    cfg_snap(d, &s);
    struct cfg_out o;
    run_sftp(&o, d, false, kh);
    cr_assert_eq(o.status, FC_E_VERIFY, "status %d: %s", o.status, o.err);
    cr_assert(strstr(o.err, "SHA256:"), "no fingerprint: %s", o.err);
    cfg_snap_same(d, &s);
    cfg_snap_free(&s);
    cfg_rm_tree(d);
}

Test(sftp, several_files_on_one_host)
{
    /* two files named on the same user@host:port share one session; both are rewritten,
     * with backups */
    char d[512], rules[1024], vars[1024], u1[1400], u2[1400];
    cfg_make_tree(d, sizeof d, "sfiles");
    cfg_write_rules(d, NULL, NULL);
    snprintf(rules, sizeof rules, "%s/rules.json", d);
    snprintf(vars, sizeof vars, "%s/vars.json", d);
    snprintf(u1, sizeof u1, "sftp://%s@%s:%s%s/app/%s", user, host, port, d, tfiles[0].rel);
    snprintf(u2, sizeof u2, "sftp://%s@%s:%s%s/app/%s", user, host, port, d, tfiles[1].rel);
    const char *args[] = {"rewrite",   "--rules", rules,        "--vars", vars,
                          "--backup",  ".orig",   "--identity", identity, "--known-hosts",
                          known_hosts, u1,        u2,           NULL};
    struct cfg_out o;
    cfg_exec(&o, args);
    cr_assert_eq(o.status, 0, "%s", o.err);
    cr_assert_eq(cfg_count(o.out, "changed sftp://"), 2, "stdout: %s", o.out);
    for (size_t i = 0; i < 2; i++) {
        char p[1100];
        snprintf(p, 1024, "%s/app/%s", d, tfiles[i].rel);
        char *b = cfg_slurp(p, NULL);
        cr_assert_str_eq(b, tfiles[i].after);
        free(b);
        strcat(p, ".orig"); /* --backup over SFTP too */
        b = cfg_slurp(p, NULL);
        cr_assert_str_eq(b, tfiles[i].before);
        free(b);
    }
    cfg_rm_tree(d);
}
