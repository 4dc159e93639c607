/* SPDX-License-Identifier: Apache-2.0 */
/* The devcloud (deploy/devcloud, fixture devcloud) holds what its script promises, as seen
 * by a client that is not ours: python3-openstackclient's `openstack ... -f json`. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>

#include "fluid/spawn.h"

#define OPENSTACK "/usr/bin/openstack"

static char g_env[4096];

/* The value of KEY in RUN_DIR/devcloud.env ("" when absent); 8 results stay valid. */
static const char *
env_get(const char *key)
{
    static char vals[8][1024];
    static unsigned next;
    char *val = vals[next++ % 8];
    size_t kl = strlen(key);
    for (const char *p = g_env; *p;) {
        const char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) : strlen(p);
        if (ll > kl && !strncmp(p, key, kl) && p[kl] == '=') {
            snprintf(val, sizeof vals[0], "%.*s", (int)(ll - kl - 1), p + kl + 1);
            return val;
        }
        p += ll + (nl ? 1 : 0);
    }
    return "";
}

/* Reads the fixture's env file and gives `openstack` a clean OS_* environment. */
static void
setup(void)
{
    const char *run = getenv("FLUID_TEST_RUN_DIR");
    if (!run)
        cr_assert_fail("FLUID_TEST_RUN_DIR not set: run through ctest (fixture devcloud)");
    char path[1024];
    snprintf(path, sizeof path, "%s/devcloud.env", run);
    FILE *f = fopen(path, "r");
    if (!f)
        cr_assert_fail("devcloud fixture env %s missing: run through ctest (fixture.devcloud)", path);
    size_t n = fread(g_env, 1, sizeof g_env - 1, f);
    g_env[n] = 0;
    fclose(f);
    if (!env_get("OS_CLIENT_CONFIG_FILE")[0])
        cr_assert_fail("%s has no OS_CLIENT_CONFIG_FILE", path);
    extern char **environ;
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e; e++) {
            if (!strncmp(*e, "OS_", 3)) {
                char k[256];
                snprintf(k, sizeof k, "%.*s", (int)strcspn(*e, "="), *e);
                unsetenv(k);
                again = 1;
                break;
            }
        }
    }
    setenv("OS_CLIENT_CONFIG_FILE", env_get("OS_CLIENT_CONFIG_FILE"), 1);
}

/* `openstack --os-cloud CLOUD ARGS... -f json`, parsed; cr_fatal on any failure. */
static json_t *
os_json(const char *cloud, const char *a1, const char *a2, const char *a3, const char *a4,
        const char *a5)
{
    const char *argv[16] = {OPENSTACK, "--os-cloud", cloud};
    int n = 3;
    const char *a[] = {a1, a2, a3, a4, a5};
    for (int i = 0; i < 5 && a[i]; i++)
        argv[n++] = a[i];
    argv[n++] = "-f";
    argv[n++] = "json";
    argv[n] = NULL;
    static char out[1 << 18], err[4096];
    int st = 0;
    cr_assert_eq(fc_run(argv, out, sizeof out, err, sizeof err, &st), FC_OK,
                 "cannot run %s", OPENSTACK);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        cr_assert_fail("openstack --os-cloud %s %s %s failed (status %d): %s", cloud, a1,
                 a2 ? a2 : "", st, err);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (!j)
        cr_assert_fail("openstack %s %s: output is not JSON (%s): %.200s", a1, a2 ? a2 : "",
                 je.text, out);
    return j;
}

/* The element of array ARR whose string field KEY equals VAL, or NULL. */
static json_t *
find(json_t *arr, const char *key, const char *val)
{
    size_t i;
    json_t *it;
    json_array_foreach(arr, i, it) {
        const char *s = json_string_value(json_object_get(it, key));
        if (s && !strcmp(s, val))
            return it;
    }
    return NULL;
}

static const char *
str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

TestSuite(devcloud, .init = setup, .timeout = 400);

Test(devcloud, projects_and_users)
{
    json_t *p = os_json("devcloud-admin", "project", "list", NULL, NULL, NULL);
    cr_expect(find(p, "Name", "source"), "project source missing");
    cr_expect(find(p, "Name", "target"), "project target missing");
    json_t *u = os_json("devcloud-admin", "user", "list", NULL, NULL, NULL);
    cr_expect(find(u, "Name", "source"), "user source missing");
    cr_expect(find(u, "Name", "target"), "user target missing");
    json_t *ra = os_json("devcloud-admin", "role", "assignment", "list", "--names", "--user=source");
    json_t *m = find(ra, "Project", "source@Default");
    cr_assert(m, "user source has no role on project source");
    cr_expect_str_eq(str(m, "Role"), "member");
    json_decref(p);
    json_decref(u);
    json_decref(ra);
}

/* Each clouds.yaml entry authenticates and is scoped to its own project. */
Test(devcloud, clouds_yaml_entries)
{
    json_t *p = os_json("devcloud-admin", "project", "list", NULL, NULL, NULL);
    const char *clouds[] = {env_get("DEVCLOUD_CLOUD_SOURCE"), env_get("DEVCLOUD_CLOUD_TARGET")};
    cr_assert_str_eq(clouds[0], "source");
    cr_assert_str_eq(clouds[1], "target");
    for (int i = 0; i < 2; i++) {
        json_t *t = os_json(clouds[i], "token", "issue", NULL, NULL, NULL);
        json_t *proj = find(p, "Name", clouds[i]);
        cr_assert(proj);
        cr_expect_str_eq(str(t, "project_id"), str(proj, "ID"), "cloud %s scoped elsewhere",
                         clouds[i]);
        json_decref(t);
    }
    cr_expect_str_eq(env_get("DEVCLOUD_CLOUD_ADMIN"), "devcloud-admin");
    json_decref(p);
}

Test(devcloud, flavors)
{
    static const struct { const char *name; long long vcpus, ram, disk; } want[] = {
        {"m1.tiny", 1, 512, 1}, {"m1.small", 1, 2048, 20},
        {"m1.medium", 2, 4096, 40}, {"m1.large", 4, 8192, 80}};
    json_t *f = os_json("source", "flavor", "list", NULL, NULL, NULL);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_t *x = find(f, "Name", want[i].name);
        cr_assert(x, "flavor %s missing", want[i].name);
        cr_expect_eq(json_integer_value(json_object_get(x, "VCPUs")), want[i].vcpus);
        cr_expect_eq(json_integer_value(json_object_get(x, "RAM")), want[i].ram);
        cr_expect_eq(json_integer_value(json_object_get(x, "Disk")), want[i].disk);
    }
    json_t *m = os_json("source", "flavor", "show", "m1.medium", NULL, NULL);
    cr_expect_str_eq(str(json_object_get(m, "properties"), "fluid:tier"), "gold");
    json_decref(f);
    json_decref(m);
}

Test(devcloud, public_image)
{
    const char *name = env_get("DEVCLOUD_IMAGE");
    cr_assert_str_eq(name, "devcloud-tiny");
    json_t *i = os_json("target", "image", "show", name, NULL, NULL);
    cr_expect_str_eq(str(i, "status"), "active");
    cr_expect_str_eq(str(i, "visibility"), "public");
    cr_expect_str_eq(str(i, "disk_format"), "raw");
    cr_expect_eq(json_integer_value(json_object_get(i, "size")), 1048576);
    json_decref(i);
}

Test(devcloud, external_network)
{
    const char *net = env_get("DEVCLOUD_EXTERNAL_NETWORK");
    cr_assert_str_eq(net, "public");
    json_t *n = os_json("source", "network", "list", "--external", NULL, NULL);
    cr_expect(find(n, "Name", net), "user source does not see external network %s", net);
    json_t *s = os_json("devcloud-admin", "subnet", "list", "--network", net, NULL);
    cr_assert_eq(json_array_size(s), 1);
    cr_expect_str_eq(str(json_array_get(s, 0), "Subnet"), env_get("DEVCLOUD_EXTERNAL_CIDR"));
    json_t *a = os_json("devcloud-admin", "network", "agent", "list", NULL, NULL);
    json_t *ovs = find(a, "Agent Type", "Open vSwitch agent");
    cr_assert(ovs, "no (fake) Open vSwitch agent");
    cr_expect(json_is_true(json_object_get(ovs, "Alive")), "the OVS agent is not alive");
    cr_expect_str_eq(str(ovs, "Host"), "devcloud");
    json_decref(n);
    json_decref(s);
    json_decref(a);
}

Test(devcloud, compute_service_up)
{
    json_t *c = os_json("devcloud-admin", "compute", "service", "list", NULL, NULL);
    const char *bins[] = {"nova-compute", "nova-conductor", "nova-scheduler"};
    for (int i = 0; i < 3; i++) {
        json_t *x = find(c, "Binary", bins[i]);
        cr_assert(x, "%s not registered", bins[i]);
        cr_expect_str_eq(str(x, "State"), "up", "%s is down", bins[i]);
    }
    json_t *h = os_json("devcloud-admin", "hypervisor", "list", NULL, NULL, NULL);
    json_t *d = find(h, "Hypervisor Hostname", "devcloud");
    cr_assert(d, "hypervisor devcloud not discovered");
    cr_expect_str_eq(str(d, "Hypervisor Type"), "fake");
    json_decref(c);
    json_decref(h);
}

Test(devcloud, volume_service_up)
{
    json_t *v = os_json("devcloud-admin", "volume", "service", "list", NULL, NULL);
    json_t *x = find(v, "Binary", "cinder-volume");
    cr_assert(x, "cinder-volume not registered");
    cr_expect_str_eq(str(x, "Host"), "devcloud@nfs1");
    cr_expect_str_eq(str(x, "State"), "up");
    json_decref(v);
}

/* Reads the file PATH whole (NUL-terminated); *len gets its size. NULL when unreadable. */
static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = 0, cap = 1 << 16;
    char *buf = malloc(cap + 1);
    cr_assert(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            cr_assert(buf);
        }
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* No secret of STATE/secrets (database, RabbitMQ, service users, users) is in a log or on
 * the command line of a running process. */
Test(devcloud, secrets_not_in_logs_or_argv)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/secrets", env_get("DEVCLOUD_STATE_DIR"));
    size_t len;
    char *sec = slurp(path, &len);
    cr_assert(sec, "cannot read %s (the test runs as root, like the fixture)", path);
    char *secrets[8];
    int ns = 0;
    for (char *save = NULL, *l = strtok_r(sec, "\n", &save); l && ns < 8;
         l = strtok_r(NULL, "\n", &save)) {
        char *v = strchr(l, '=');
        if (v && strlen(v + 1) >= 16)
            secrets[ns++] = v + 1;
    }
    cr_assert_geq(ns, 3, "%s holds %d secrets", path, ns);
    const char *logdir = env_get("DEVCLOUD_LOG_DIR");
    DIR *d = opendir(logdir);
    cr_assert(d, "log folder %s missing", logdir);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", logdir, de->d_name);
        char *buf = slurp(path, &len);
        if (!buf)
            continue;
        for (int i = 0; i < ns; i++)
            cr_expect(!memmem(buf, len, secrets[i], strlen(secrets[i])),
                      "secret %d of %d is in %s", i + 1, ns, path);
        free(buf);
    }
    closedir(d);
    d = opendir("/proc");
    cr_assert(d);
    int nproc = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", de->d_name);
        char *buf = slurp(path, &len);
        if (!buf)
            continue;
        nproc++;
        for (int i = 0; i < ns; i++)
            cr_expect(!memmem(buf, len, secrets[i], strlen(secrets[i])),
                      "secret %d of %d is on the command line of pid %s", i + 1, ns,
                      de->d_name);
        free(buf);
    }
    closedir(d);
    cr_expect_gt(nproc, 10);
    free(sec);
}

/* Password files are private, and no log of the devcloud holds the users' password. */
Test(devcloud, secrets_stay_private)
{
    const char *files[] = {env_get("OS_CLIENT_CONFIG_FILE"), env_get("DEVCLOUD_ADMIN_OPENRC")};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        cr_assert_eq(stat(files[i], &st), 0, "%s missing", files[i]);
        cr_expect_eq(st.st_mode & 0777, 0600, "%s has mode %o", files[i], st.st_mode & 0777);
    }
    FILE *f = fopen(files[0], "r");
    cr_assert(f);
    char line[512], pw[512] = "";
    while (fgets(line, sizeof line, f)) {
        char *p = strstr(line, "password: ");
        if (p) {
            p += strlen("password: ");
            p[strcspn(p, "\r\n")] = 0;
            size_t l = strlen(p);
            if (l >= 2 && p[0] == '"' && p[l - 1] == '"')
                snprintf(pw, sizeof pw, "%.*s", (int)(l - 2), p + 1);
            else
                snprintf(pw, sizeof pw, "%s", p);
            break;
        }
    }
    fclose(f);
    cr_assert(strlen(pw) >= 8, "no password found in %s", files[0]);
    const char *logdir = env_get("DEVCLOUD_LOG_DIR");
    DIR *d = opendir(logdir);
    cr_assert(d, "log folder %s missing", logdir);
    struct dirent *de;
    int nlogs = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", logdir, de->d_name);
        FILE *lf = fopen(path, "r");
        if (!lf)
            continue;
        nlogs++;
        size_t len = 0, cap = 1 << 20;
        char *buf = malloc(cap);
        cr_assert(buf);
        size_t got;
        while ((got = fread(buf + len, 1, cap - len, lf)) > 0) {
            len += got;
            if (len == cap) {
                cap *= 2;
                buf = realloc(buf, cap);
                cr_assert(buf);
            }
        }
        cr_expect(!memmem(buf, len, pw, strlen(pw)), "the password is in %s", path);
        free(buf);
        fclose(lf);
    }
    closedir(d);
    cr_expect_gt(nlogs, 5, "expected the devcloud's logs in %s", logdir);
}
