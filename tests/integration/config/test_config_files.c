/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config on real files: every rule type (CRLF, UTF-8, no final newline, multi-line),
 * dry-run diffs that `patch` applies, idempotent reruns, all-or-nothing on bad rules
 * (invalid regex, unknown type, undefined variable, outside the root, symlink escape, "..",
 * FIFO, size limit), mode/owner/backup, and the broker's done event. */
#include <dirent.h>
#include <jansson.h>
#include <linux/fs.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/xattr.h>

#include "cfg_test_util.h"
#include "fluid/error.h"

#define RUN(o, ...) cfg_exec((o), (const char *const[]){__VA_ARGS__, NULL})

static void
run_ok(const char *dir, struct cfg_out *o, bool dry)
{
    char rules[1024], vars[1024], root[1024];
    snprintf(rules, sizeof rules, "%s/rules.json", dir);
    snprintf(vars, sizeof vars, "%s/vars.json", dir);
    snprintf(root, sizeof root, "%s/app", dir);
    if (dry)
        RUN(o, "rewrite", "--rules", rules, "--vars", vars, "--dry-run", root);
    else
        RUN(o, "rewrite", "--rules", rules, "--vars", vars, root);
    cr_assert_eq(o->status, 0, "fluid-config failed: %s", o->err);
}

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

Test(files, every_rule_type_on_real_files)
{
    char dir[512];
    cfg_make_tree(dir, sizeof dir, "types");
    cfg_write_rules(dir, NULL, NULL);
    struct cfg_out o;
    run_ok(dir, &o, false);
    cfg_expect_tree(dir, true);
    cr_assert_eq(cfg_count(o.out, "changed "), NCHANGED, "stdout: %s", o.out);
    cr_assert_eq(cfg_count(o.out, "unchanged "), 0, "stdout: %s", o.out);
    no_temp_files(dir);
    cfg_rm_tree(dir);
}

Test(files, second_run_reports_unchanged_and_writes_nothing)
{
    char dir[512];
    cfg_make_tree(dir, sizeof dir, "rerun");
    cfg_write_rules(dir, NULL, NULL);
    struct cfg_out o;
    run_ok(dir, &o, false);
    struct snap s;
    cfg_snap(dir, &s);
    run_ok(dir, &o, false);
    cr_assert_eq(cfg_count(o.out, "unchanged "), NCHANGED, "stdout: %s", o.out);
    cr_assert_eq(cfg_count(o.out, "\nchanged ") + (strncmp(o.out, "changed ", 8) == 0), 0);
    cfg_snap_same(dir, &s);
    cfg_snap_free(&s);
    cfg_rm_tree(dir);
}

Test(files, dry_run_prints_a_diff_that_patch_applies_and_changes_nothing)
{
    char dir[512];
    cfg_make_tree(dir, sizeof dir, "dry");
    cfg_write_rules(dir, NULL, NULL);
    struct snap s;
    cfg_snap(dir, &s);
    struct cfg_out o;
    run_ok(dir, &o, true);
    cfg_snap_same(dir, &s);
    cfg_snap_free(&s);
    cr_assert_eq(cfg_count(o.out, "\n+++ b/"), NCHANGED, "diff: %s", o.out);
    cr_assert(strstr(o.out, "\\ No newline at end of file"), "diff: %s", o.out);
    char diff[1024];
    snprintf(diff, sizeof diff, "%s/changes.diff", dir);
    cfg_write(diff, o.out, strlen(o.out));
    /* patch --dry-run accepts it, then applying it gives exactly what a real run writes */
    const char *chk[] = {"/usr/bin/patch", "-p1", "-d", "/", "--dry-run", "-i", diff, NULL};
    char out[8192], err[8192];
    int st = 0;
    cr_assert_eq(fc_run(chk, out, sizeof out, err, sizeof err, &st), FC_OK);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "patch --dry-run: %s%s", out, err);
    cfg_expect_tree(dir, false);
    const char *app[] = {"/usr/bin/patch", "-p1", "-d", "/", "-i", diff, NULL};
    cr_assert_eq(fc_run(app, out, sizeof out, err, sizeof err, &st), FC_OK);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "patch: %s%s", out, err);
    cfg_expect_tree(dir, true);
    run_ok(dir, &o, false);
    cr_assert_eq(cfg_count(o.out, "unchanged "), NCHANGED, "stdout: %s", o.out);
    cfg_rm_tree(dir);
}

/* Runs a rule set whose standard (valid) sets come first, plus extra; it must fail with
 * every needle in its error and leave every file as it was. */
static void
bad_run(const char *name, const char *limits, const char *extra, const char *target_rel,
        void (*prepare)(const char *dir), const char *const *needles)
{
    char dir[512];
    cfg_make_tree(dir, sizeof dir, name);
    cfg_write_rules(dir, limits, extra);
    if (prepare)
        prepare(dir);
    struct snap s;
    cfg_snap(dir, &s);
    char rules[1024], vars[1024], root[1024], target[1024];
    snprintf(rules, sizeof rules, "%s/rules.json", dir);
    snprintf(vars, sizeof vars, "%s/vars.json", dir);
    snprintf(root, sizeof root, "%s/app", dir);
    snprintf(target, sizeof target, "%s/%s", dir, target_rel ? target_rel : "app");
    struct cfg_out o;
    RUN(&o, "rewrite", "--rules", rules, "--vars", vars, root, target);
    cr_assert_neq(o.status, 0, "%s: accepted; stdout: %s", name, o.out);
    for (const char *const *n = needles; *n; n++)
        cr_assert(strstr(o.err, *n), "%s: error lacks \"%s\": %s", name, *n, o.err);
    cr_assert_eq(o.out[0], '\0', "%s: printed %s", name, o.out);
    cfg_snap_same(dir, &s);
    cfg_snap_free(&s);
    no_temp_files(dir);
    char out[1024];
    snprintf(out, sizeof out, "%s/outside/secret.conf", dir);
    if (access(out, F_OK) == 0) {
        char *b = cfg_slurp(out, NULL);
        cr_assert_str_eq(b, "interpreter=/usr/bin/node\n", "%s: the file outside changed", name);
        free(b);
    }
    cfg_rm_tree(dir);
}

Test(bad_rules, invalid_regex)
{
    const char *n[] = {"files[7].rules[0]", "invalid regular expression", "FC_E_INVALID", NULL};
    bad_run("badre", NULL,
            "{\"glob\":\"README\",\"rules\":[{\"type\":\"regex\","
            "\"pattern\":\"(unclosed\",\"replace\":\"x\"}]}",
            NULL, NULL, n);
}

Test(bad_rules, unknown_format)
{
    const char *n[] = {"files[7].rules[0]", "unknown rule type \\\"toml\\\"", NULL};
    bad_run("badtype", NULL,
            "{\"glob\":\"README\",\"rules\":[{\"type\":\"toml\",\"key\":\"a\","
            "\"set\":\"b\"}]}",
            NULL, NULL, n);
}

Test(bad_rules, undefined_variable)
{
    const char *n[] = {"files[7].rules[0]", "undefined variable ${target.dns.zone}", NULL};
    bad_run("badvar", NULL,
            "{\"glob\":\"README\",\"rules\":[{\"type\":\"regex\","
            "\"pattern\":\"x\",\"replace\":\"${target.dns.zone}\"}]}",
            NULL, NULL, n);
}

Test(bad_rules, failing_require_in_a_later_file)
{
    const char *n[] = {"README", "files[7].rules[0] (\\\"README names the app\\\")",
                       "required pattern not found", NULL};
    bad_run("badreq", NULL,
            "{\"glob\":\"README\",\"rules\":[{\"type\":\"require\","
            "\"name\":\"README names the app\",\"pattern\":\"myapp\"}]}",
            NULL, NULL, n);
}

Test(bad_rules, not_idempotent)
{
    const char *n[] = {"not idempotent", "files[7].rules[0]", NULL};
    bad_run("badidem", NULL,
            "{\"glob\":\"README\",\"rules\":[{\"type\":\"regex\","
            "\"pattern\":\"file\",\"replace\":\"file file\"}]}",
            NULL, NULL, n);
}

static void
make_outside(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/outside/secret.conf", dir);
    cfg_write(p, "interpreter=/usr/bin/node\n", 26);
}

Test(bad_rules, path_outside_the_root)
{
    const char *n[] = {"outside/secret.conf", "outside the roots", NULL};
    bad_run("outside", NULL, NULL, "outside/secret.conf", make_outside, n);
}

Test(bad_rules, dotdot_in_a_path)
{
    const char *n[] = {"\\\"..\\\" is not allowed", NULL};
    bad_run("dotdot", NULL, NULL, "app/conf/../../outside/secret.conf", make_outside, n);
}

static void
make_escape(const char *dir)
{
    make_outside(dir);
    char p[1024], t[1024];
    snprintf(p, sizeof p, "%s/app/conf/zz-evil.conf", dir);
    snprintf(t, sizeof t, "%s/outside/secret.conf", dir);
    cr_assert_eq(symlink(t, p), 0, "symlink: %s", strerror(errno));
}

Test(bad_rules, symlink_leaving_the_root)
{
    const char *n[] = {"zz-evil.conf", "symlink leaves the root", "outside/secret.conf", NULL};
    bad_run("symlink", NULL, NULL, NULL, make_escape, n);
}

static void
make_fifo(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/app/conf/zz-fifo.conf", dir);
    cr_assert_eq(mkfifo(p, 0600), 0, "mkfifo: %s", strerror(errno));
}

Test(bad_rules, fifo_is_refused)
{
    const char *n[] = {"zz-fifo.conf", "not a regular file", NULL};
    bad_run("fifo", NULL, NULL, NULL, make_fifo, n);
}

Test(bad_rules, size_limit)
{
    const char *n[] = {"above the limit of 40 bytes", "limits.max_file_bytes", NULL};
    bad_run("size", "\"limits\":{\"max_file_bytes\":40}", NULL, NULL, NULL, n);
}

Test(bad_rules, catastrophic_backtracking_is_reported)
{
    const char *n[] = {"match limit of 5000 steps exceeded", "backtracking", NULL};
    bad_run("backtrack", "\"limits\":{\"match_limit\":5000}",
            "{\"glob\":\"README\",\"rules\":[{\"type\":\"regex\",\"pattern\":\"^(\\\\w+\\\\s?)+$\","
            "\"replace\":\"x\"}]}",
            NULL, NULL, n);
}

Test(files, mode_owner_xattrs_and_backup_are_kept)
{
    char dir[512], p[1024], bk[1100];
    cfg_make_tree(dir, sizeof dir, "meta");
    cfg_write_rules(dir, NULL, NULL);
    snprintf(p, sizeof p, "%s/app/conf/app.conf", dir);
    snprintf(bk, sizeof bk, "%s.orig", p);
    cr_assert_eq(chmod(p, 0640), 0);
    if (geteuid() == 0)
        cr_assert_eq(chown(p, 4321, 4322), 0);
    cr_assert_eq(setxattr(p, "user.fluid.test", "kept", 4, 0), 0,
                 "the test folder's file system has no user xattrs: %s", strerror(errno));
    char rules[1024], vars[1024], root[1024];
    snprintf(rules, sizeof rules, "%s/rules.json", dir);
    snprintf(vars, sizeof vars, "%s/vars.json", dir);
    snprintf(root, sizeof root, "%s/app", dir);
    struct cfg_out o;
    RUN(&o, "rewrite", "--rules", rules, "--vars", vars, "--backup", ".orig", root);
    cr_assert_eq(o.status, 0, "%s", o.err);
    cfg_expect_tree(dir, true);
    /* extended attributes (where SELinux keeps its label) are carried to the new file */
    char val[64] = "";
    ssize_t vn = getxattr(p, "user.fluid.test", val, sizeof val - 1);
    cr_assert_eq(vn, 4, "user.fluid.test not kept: %s", strerror(errno));
    cr_assert(memcmp(val, "kept", 4) == 0);
    struct stat st, sb;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0640);
    cr_assert_eq(stat(bk, &sb), 0, "no backup %s", bk);
    cr_assert_eq(sb.st_mode & 07777, 0640);
    if (geteuid() == 0) {
        cr_assert(st.st_uid == 4321 && st.st_gid == 4322, "owner %u:%u", st.st_uid, st.st_gid);
        cr_assert(sb.st_uid == 4321 && sb.st_gid == 4322);
    }
    char *b = cfg_slurp(bk, NULL);
    cr_assert_str_eq(b, tfiles[0].before);
    free(b);
    cfg_rm_tree(dir);
}

Test(files, broker_task_vars_and_done_event)
{
    char dir[512];
    cfg_make_tree(dir, sizeof dir, "broker");
    cfg_write_rules(dir, NULL, NULL);
    char rules[1024], root[1024], prog[1024], conffile[1024];
    snprintf(rules, sizeof rules, "%s/rules.json", dir);
    snprintf(root, sizeof root, "%s/app", dir);
    snprintf(conffile, sizeof conffile, "%s/app/conf/app.conf", dir);
    snprintf(prog, sizeof prog, "%s/fluid-config", getenv("FLUID_BIN_DIR"));
    /* app.conf is already rewritten: it must be listed as unchanged */
    cfg_write(conffile, tfiles[0].after, strlen(tfiles[0].after));
    /* the variables come from the Task (as the conduit sends them), not from --vars */
    int ev[2], tk[2];
    cr_assert_eq(pipe(ev), 0);
    cr_assert_eq(pipe(tk), 0);
    char *task = NULL;
    cr_assert(asprintf(&task,
                       "{\"schema\":\"fluid.task/1\",\"relocation_id\":\"r-cfg\","
                       "\"task_id\":\"t-cfg\",\"vars\":%s}",
                       tvars) > 0);
    cr_assert_eq(write(tk[1], task, strlen(task)), (ssize_t)strlen(task));
    free(task);
    close(tk[1]);
    const char *argv[] = {prog,      "--task-fd", "3",   "--events-fd", "4",
                          "rewrite", "--rules",   rules, root,          NULL};
    int pass[] = {tk[0], ev[1]};
    struct fc_spawn sp = {.argv = argv, .fd = {-1, -1, -1}, .pass = pass, .npass = 2};
    pid_t pid;
    cr_assert_eq(fc_spawn(&sp, &pid), FC_OK, "%s", fc_error_msg());
    close(tk[0]);
    close(ev[1]);
    char buf[65536];
    size_t n = 0;
    ssize_t r;
    while ((r = read(ev[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(ev[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "events: %s", buf);
    json_t *done = NULL;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        cr_assert_not_null(j, "event is not JSON: %s", line);
        if (strcmp(json_string_value(json_object_get(j, "event")), "done") == 0)
            done = json_incref(j);
        json_decref(j);
    }
    cr_assert_not_null(done, "no done event");
    json_t *res = json_object_get(done, "result");
    cr_assert_eq(json_array_size(json_object_get(res, "changed")), NCHANGED - 1);
    json_t *un = json_object_get(res, "unchanged");
    cr_assert_eq(json_array_size(un), 1);
    cr_assert_str_eq(json_string_value(json_array_get(un, 0)), conffile);
    json_decref(done);
    cfg_rm_tree(dir);
}

Test(files, check_validates_without_writing)
{
    char dir[512];
    cfg_make_tree(dir, sizeof dir, "check");
    cfg_write_rules(dir, NULL, NULL);
    struct snap s;
    cfg_snap(dir, &s);
    char rules[1024], vars[1024];
    snprintf(rules, sizeof rules, "%s/rules.json", dir);
    snprintf(vars, sizeof vars, "%s/vars.json", dir);
    struct cfg_out o;
    RUN(&o, "check", "--rules", rules, "--vars", vars);
    cr_assert_eq(o.status, 0, "%s", o.err);
    cr_assert(strstr(o.out, "valid"), "%s", o.out);
    /* without the variables: the first rule that needs one is named */
    RUN(&o, "check", "--rules", rules, "--var", "target.ip=10.9.9.9");
    cr_assert_eq(o.status, FC_E_INVALID);
    cr_assert(strstr(o.err, "files[0].rules[1]") && strstr(o.err, "${target.node}"), "%s", o.err);
    cfg_snap_same(dir, &s);
    cfg_snap_free(&s);
    cfg_rm_tree(dir);
}

Test(files, symlink_inside_the_root_is_followed_once_and_kept)
{
    char dir[512], link[1024], subdir[1024];
    cfg_make_tree(dir, sizeof dir, "inlink");
    cfg_write_rules(dir, NULL, NULL);
    snprintf(link, sizeof link, "%s/app/conf/zz-link.conf", dir);
    cr_assert_eq(symlink("app.conf", link), 0);
    snprintf(subdir, sizeof subdir, "%s/app/conf/zz-etc", dir);
    cr_assert_eq(symlink("/etc", subdir), 0); /* a symlinked folder is not followed */
    struct cfg_out o;
    run_ok(dir, &o, false);
    cfg_expect_tree(dir, true);
    cr_assert_eq(cfg_count(o.out, "changed "), NCHANGED, "stdout: %s", o.out);
    cr_assert_null(strstr(o.out, "zz-link.conf"), "stdout: %s", o.out);
    struct stat st;
    cr_assert_eq(lstat(link, &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "the symlink was replaced by a file");
    cfg_rm_tree(dir);
}

Test(files, dry_run_diff_of_a_large_rewrite_applies)
{
    /* 1700 lines, every other one changed: more than the diff's edit-distance bound, so
     * the diff falls back to one block; patch must still give the real run's bytes */
    char dir[512], p[1024], q[1024], rules[1024], diff[1100];
    cfg_make_tree(dir, sizeof dir, "bigdiff");
    snprintf(p, sizeof p, "%s/app/big.cfg", dir);
    snprintf(q, sizeof q, "%s/copy/big.cfg", dir);
    size_t cap = 1700 * 32, n = 0;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    for (int i = 0; i < 1700; i++)
        n += (size_t)snprintf(buf + n, cap - n, i % 2 ? "h%d=10.0.0.1\n" : "k%d\n", i);
    cfg_write(p, buf, n);
    free(buf);
    snprintf(rules, sizeof rules, "%s/big.rules.json", dir);
    char *doc = NULL;
    cr_assert(asprintf(&doc,
                       "{\"roots\":[\"%s/app\"],\"files\":[{\"glob\":\"*.cfg\",\"rules\":["
                       "{\"type\":\"regex\",\"pattern\":\"=10\\\\.0\\\\.0\\\\.1$\","
                       "\"flags\":\"m\",\"replace\":\"=192.168.7.7\"}]}]}",
                       dir) > 0);
    cfg_write(rules, doc, strlen(doc));
    free(doc);
    struct cfg_out o;
    RUN(&o, "rewrite", "--rules", rules, "--dry-run", p);
    cr_assert_eq(o.status, 0, "%s", o.err);
    size_t dl = strlen(o.out);
    cr_assert(dl > 0 && dl < sizeof o.out - 1, "diff of %zu bytes", dl);
    snprintf(diff, sizeof diff, "%s/big.diff", dir);
    cfg_write(diff, o.out, dl);
    const char *app[] = {"/usr/bin/patch", "-p1", "-d", "/", "-i", diff, "-o", q, NULL};
    char out[8192], err[8192];
    int st = 0;
    cfg_mkdirs(q);
    cr_assert_eq(fc_run(app, out, sizeof out, err, sizeof err, &st), FC_OK);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "patch: %s%s", out, err);
    RUN(&o, "rewrite", "--rules", rules, p);
    cr_assert_eq(o.status, 0, "%s", o.err);
    size_t na, nb;
    char *a = cfg_slurp(p, &na), *b = cfg_slurp(q, &nb);
    cr_assert(na == nb && memcmp(a, b, na) == 0, "patched copy differs from the real run");
    cr_assert(strstr(a, "h1699=192.168.7.7\n"));
    free(a);
    free(b);
    cfg_rm_tree(dir);
}

Test(files, broker_failed_event_names_the_error)
{
    char dir[512], rules[1024], root[1024], prog[1024];
    cfg_make_tree(dir, sizeof dir, "brokerfail");
    cfg_write_rules(dir, NULL, NULL);
    snprintf(rules, sizeof rules, "%s/rules.json", dir);
    snprintf(root, sizeof root, "%s/app", dir);
    snprintf(prog, sizeof prog, "%s/fluid-config", getenv("FLUID_BIN_DIR"));
    int ev[2];
    cr_assert_eq(pipe(ev), 0);
    /* no variables at all: the first rule needing one fails the run */
    const char *argv[] = {prog, "--events-fd", "3", "rewrite", "--rules", rules, root, NULL};
    struct fc_spawn sp = {.argv = argv, .fd = {-1, -1, -1}, .pass = &ev[1], .npass = 1};
    pid_t pid;
    cr_assert_eq(fc_spawn(&sp, &pid), FC_OK, "%s", fc_error_msg());
    close(ev[1]);
    char buf[65536];
    size_t n = 0;
    ssize_t r;
    while ((r = read(ev[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(ev[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == FC_E_INVALID, "status %d", st);
    json_t *j = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
    cr_assert_not_null(j, "events: %s", buf);
    cr_assert_str_eq(json_string_value(json_object_get(j, "event")), "failed");
    json_t *err = json_object_get(j, "error");
    cr_assert_str_eq(json_string_value(json_object_get(err, "code")), "FC_E_INVALID");
    cr_assert(strstr(json_string_value(json_object_get(err, "message")), "undefined variable"),
              "%s", buf);
    json_decref(j);
    cfg_expect_tree(dir, false);
    cfg_rm_tree(dir);
}

Test(files, failed_rename_puts_replaced_files_back)
{
    /* db.ini is immutable (chattr +i): its rename fails after app.conf (earlier in name
     * order) was replaced; app.conf must get its old content back */
    char dir[512], ini[1024];
    cfg_make_tree(dir, sizeof dir, "rollback");
    cfg_write_rules(dir, NULL, NULL);
    snprintf(ini, sizeof ini, "%s/app/conf/db.ini", dir);
    int fd = open(ini, O_RDONLY);
    cr_assert_geq(fd, 0);
    int flags = 0;
    cr_assert_eq(ioctl(fd, FS_IOC_GETFLAGS, &flags), 0, "FS_IOC_GETFLAGS: %s", strerror(errno));
    int imm = flags | FS_IMMUTABLE_FL;
    cr_assert_eq(ioctl(fd, FS_IOC_SETFLAGS, &imm), 0,
                 "chattr +i needs root and ext4/xfs/btrfs for the test folder: %s",
                 strerror(errno));
    char rules[1024], vars[1024], root[1024];
    snprintf(rules, sizeof rules, "%s/rules.json", dir);
    snprintf(vars, sizeof vars, "%s/vars.json", dir);
    snprintf(root, sizeof root, "%s/app", dir);
    struct cfg_out o;
    RUN(&o, "rewrite", "--rules", rules, "--vars", vars, root);
    cr_assert_eq(ioctl(fd, FS_IOC_SETFLAGS, &flags), 0);
    close(fd);
    cr_assert_eq(o.status, FC_E_IO, "status %d: %s", o.status, o.err);
    cr_assert(strstr(o.err, "db.ini: rename"), "%s", o.err);
    cr_assert(strstr(o.err, "4 file(s) were replaced before this failure, 4 put back"), "%s",
              o.err);
    cfg_expect_tree(dir, false);
    no_temp_files(dir);
    cfg_rm_tree(dir);
}
