/* SPDX-License-Identifier: Apache-2.0 */
/* The devcloud's real guests (fixture devcloud-guests, `devcloud up --guests`), driven with a
 * client that is not ours (python3-openstackclient) plus OpenSSH and curl: a guest boots
 * from image fluid-guest in project source, answers SSH on its floating IP (host key taken
 * from its console log, never accepted blindly) and HTTP (its application page is
 * /etc/app/app.conf, so a rewrite shows at once); a file written in it is in its snapshot,
 * which boots in project target; a volume attached there is /dev/vdb, mounted on /data. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fluid/spawn.h"

#define OPENSTACK "/usr/bin/openstack"
#define SSH "/usr/bin/ssh"
#define CURL "/usr/bin/curl"
#define WAIT_S 900 /* upper bound of any wait: TCG guests on a loaded 2-vCPU host are slow */

static char g_env[8192];
static char g_tag[64];
static char g_dir[1024];

static const char *
env_get(const char *key)
{
    static char vals[8][1024];
    static unsigned next;
    char *val = vals[next++ % 8];
    size_t kl = strlen(key);
    val[0] = 0;
    for (const char *p = g_env; *p;) {
        const char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) : strlen(p);
        if (ll > kl && !strncmp(p, key, kl) && p[kl] == '=') {
            snprintf(val, sizeof vals[0], "%.*s", (int)(ll - kl - 1), p + kl + 1);
            return val;
        }
        p += ll + (nl ? 1 : 0);
    }
    return val;
}

/* Runs argv (NULL-terminated); returns its exit status (-1 when it did not exit), its stdout
 * in OUT (cap bytes). */
static int
run(const char *const *argv, char *out, size_t cap, char *err, size_t errcap)
{
    int st = 0;
    cr_assert_eq(fc_run(argv, out, cap, err, errcap, &st), FC_OK, "cannot run %s", argv[0]);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `openstack --os-cloud CLOUD ARGS...` (NULL-terminated); with json, `-f json` parsed.
 * cr_fatal when it fails, unless may_fail. */
static json_t *
os_v(bool may_fail, bool json, const char *cloud, va_list ap)
{
    const char *argv[40] = {OPENSTACK, "--os-cloud", cloud};
    int n = 3;
    for (const char *a; (a = va_arg(ap, const char *)) && n < 36;)
        argv[n++] = a;
    if (json) {
        argv[n++] = "-f";
        argv[n++] = "json";
    }
    argv[n] = NULL;
    static char out[1 << 18], err[8192];
    int rc = run(argv, out, sizeof out, err, sizeof err);
    if (rc != 0) {
        if (may_fail)
            return NULL;
        cr_assert_fail("openstack --os-cloud %s %s %s %s failed (%d): %s", cloud, argv[3],
                 n > 4 ? argv[4] : "", n > 5 ? argv[5] : "", rc, err);
    }
    if (!json)
        return json_string(out);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (!j)
        cr_assert_fail("openstack %s %s: not JSON (%s): %.300s", argv[3], argv[4], je.text, out);
    return j;
}

/* Plain-text output as a JSON string, or NULL when the command failed. */
static json_t *
os_text_try(const char *cloud, ...)
{
    va_list ap;
    va_start(ap, cloud);
    json_t *j = os_v(true, false, cloud, ap);
    va_end(ap);
    return j;
}

static json_t *
os_json(const char *cloud, ...)
{
    va_list ap;
    va_start(ap, cloud);
    json_t *j = os_v(false, true, cloud, ap);
    va_end(ap);
    return j;
}

static void
os_do(const char *cloud, ...)
{
    va_list ap;
    va_start(ap, cloud);
    json_decref(os_v(false, false, cloud, ap));
    va_end(ap);
}

static void
os_try(const char *cloud, ...)
{
    va_list ap;
    va_start(ap, cloud);
    json_decref(os_v(true, false, cloud, ap));
    va_end(ap);
}

static const char *
str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void
setup(void)
{
    const char *run_dir = getenv("FLUID_TEST_RUN_DIR");
    if (!run_dir)
        cr_assert_fail("FLUID_TEST_RUN_DIR not set: run through ctest (fixture devcloud-guests)");
    char path[1024];
    snprintf(path, sizeof path, "%s/devcloud-guests.env", run_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        cr_assert_fail("%s missing: the devcloud with real guests is not up (ctest fixture "
                 "devcloud-guests runs `devcloud up --guests`)", path);
    size_t n = fread(g_env, 1, sizeof g_env - 1, f);
    g_env[n] = 0;
    fclose(f);
    if (strcmp(env_get("DEVCLOUD_GUESTS"), "1"))
        cr_assert_fail("%s: DEVCLOUD_GUESTS is not 1: real guests are not up", path);
    extern char **environ;
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e; e++)
            if (!strncmp(*e, "OS_", 3)) {
                char k[256];
                snprintf(k, sizeof k, "%.*s", (int)strcspn(*e, "="), *e);
                unsetenv(k);
                again = 1;
                break;
            }
    }
    setenv("OS_CLIENT_CONFIG_FILE", env_get("OS_CLIENT_CONFIG_FILE"), 1);
    snprintf(g_tag, sizeof g_tag, "fluid-test-guests-%d", (int)getpid());
    snprintf(g_dir, sizeof g_dir, "%s/%s", run_dir, g_tag);
    cr_assert_eq(mkdir(g_dir, 0700), 0, "mkdir %s", g_dir);
}

static char g_fip_id[2][64];   /* [0] source, [1] target */
static char g_snap_id[64];
static char g_vol_id[64];

/* Deletes whatever the test made (all named g_tag, in both projects), in reverse order. */
static void
teardown(void)
{
    const char *clouds[] = {"source", "target"};
    if (!g_tag[0])
        return; /* setup failed before naming anything */
    for (int i = 0; i < 2; i++) {
        os_try(clouds[i], "server", "delete", "--wait", g_tag, NULL);
        if (g_fip_id[i][0])
            os_try(clouds[i], "floating", "ip", "delete", g_fip_id[i], NULL);
    }
    if (g_vol_id[0])
        os_try("target", "volume", "delete", g_vol_id, NULL);
    if (g_snap_id[0])
        os_try("source", "image", "delete", g_snap_id, NULL);
    for (int i = 0; i < 2; i++) {
        os_try(clouds[i], "router", "remove", "subnet", g_tag, g_tag, NULL);
        os_try(clouds[i], "router", "delete", g_tag, NULL);
        os_try(clouds[i], "network", "delete", g_tag, NULL);
        os_try(clouds[i], "security", "group", "delete", g_tag, NULL);
        os_try(clouds[i], "keypair", "delete", g_tag, NULL);
    }
}

/* One project's network, router (gateway on the external network), security group (SSH,
 * HTTP, ICMP in) and key pair (the fixture's public key), all named g_tag. */
static void
project_setup(const char *cloud)
{
    os_do(cloud, "keypair", "create", "--public-key", env_get("DEVCLOUD_GUEST_SSH_PUBKEY"),
          g_tag, NULL);
    os_do(cloud, "network", "create", g_tag, NULL);
    os_do(cloud, "subnet", "create", "--network", g_tag, "--subnet-range", "10.96.0.0/24",
          g_tag, NULL);
    os_do(cloud, "router", "create", g_tag, NULL);
    os_do(cloud, "router", "set", "--external-gateway", env_get("DEVCLOUD_EXTERNAL_NETWORK"),
          g_tag, NULL);
    os_do(cloud, "router", "add", "subnet", g_tag, g_tag, NULL);
    os_do(cloud, "security", "group", "create", g_tag, NULL);
    os_do(cloud, "security", "group", "rule", "create", "--ingress", "--protocol", "tcp",
          "--dst-port", "22", g_tag, NULL);
    os_do(cloud, "security", "group", "rule", "create", "--ingress", "--protocol", "tcp",
          "--dst-port", "80", g_tag, NULL);
    os_do(cloud, "security", "group", "rule", "create", "--ingress", "--protocol", "icmp",
          g_tag, NULL);
}

/* Boots IMAGE in CLOUD (waits for ACTIVE), gives it a floating IP; returns the address. */
static void
boot(const char *cloud, int side, const char *image, char *fip, size_t fipcap)
{
    json_t *s = os_json(cloud, "server", "create", "--image", image, "--flavor",
                        env_get("DEVCLOUD_GUEST_FLAVOR"), "--key-name", g_tag, "--network",
                        g_tag, "--security-group", g_tag, "--wait", g_tag, NULL);
    cr_assert_str_eq(str(s, "status"), "ACTIVE", "server in %s: %s", cloud, str(s, "status"));
    cr_expect_str_eq(str(s, "OS-EXT-AZ:availability_zone"), env_get("DEVCLOUD_GUEST_AZ"),
                     "a real guest outside AZ %s", env_get("DEVCLOUD_GUEST_AZ"));
    json_decref(s);
    json_t *f = os_json(cloud, "floating", "ip", "create", env_get("DEVCLOUD_EXTERNAL_NETWORK"),
                        NULL);
    snprintf(g_fip_id[side], sizeof g_fip_id[side], "%s", str(f, "id"));
    snprintf(fip, fipcap, "%s", str(f, "floating_ip_address"));
    json_decref(f);
    cr_assert(fip[0], "no floating IP address");
    os_do(cloud, "server", "add", "floating", "ip", g_tag, fip, NULL);
}

/* Waits for the ready marker in the console log, then writes KH (known_hosts) with the host
 * keys the guest printed there: the console is read through Nova's API as the owner. */
static void
trust_console_host_key(const char *cloud, const char *fip, const char *kh)
{
    const char *marker = env_get("DEVCLOUD_GUEST_READY_MARKER");
    cr_assert(marker[0], "DEVCLOUD_GUEST_READY_MARKER missing in the fixture's env");
    char *log = NULL;
    for (time_t end = time(NULL) + WAIT_S; time(NULL) < end; sleep(3)) {
        json_t *c = os_text_try(cloud, "console", "log", "show", g_tag, NULL);
        const char *t = json_string_value(c);
        if (t && strstr(t, marker) && strstr(t, "-----END SSH HOST KEY KEYS-----")) {
            log = strdup(t);
            json_decref(c);
            break;
        }
        json_decref(c);
    }
    cr_assert(log, "the guest in %s never printed %s on its console", cloud, marker);
    char *b = strstr(log, "-----BEGIN SSH HOST KEY KEYS-----");
    char *e = b ? strstr(b, "-----END SSH HOST KEY KEYS-----") : NULL;
    cr_assert(b && e, "no host keys on the console of the guest in %s", cloud);
    *e = 0;
    FILE *f = fopen(kh, "w");
    cr_assert(f, "cannot write %s", kh);
    int nkeys = 0;
    for (char *save = NULL, *l = strtok_r(b, "\r\n", &save); l; l = strtok_r(NULL, "\r\n", &save))
        if (!strncmp(l, "ssh-", 4)) {
            fprintf(f, "%s %s\n", fip, l);
            nkeys++;
        }
    fclose(f);
    free(log);
    cr_assert_gt(nkeys, 0, "no ssh- line between the host key markers");
}

/* ssh root@FIP CMD with KH as the only known_hosts (StrictHostKeyChecking=yes). */
static int
ssh_run(const char *fip, const char *kh, const char *cmd, char *out, size_t cap)
{
    char khopt[1200], dest[128];
    snprintf(khopt, sizeof khopt, "UserKnownHostsFile=%s", kh);
    snprintf(dest, sizeof dest, "%s@%s", env_get("DEVCLOUD_GUEST_USER"), fip);
    const char *argv[] = {SSH, "-i", env_get("DEVCLOUD_GUEST_SSH_KEY"), "-o", khopt,
                          "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                          "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
                          "-o", "GlobalKnownHostsFile=/dev/null", dest, cmd, NULL};
    static char err[4096];
    return run(argv, out, cap, err, sizeof err);
}

static void
wait_ssh(const char *fip, const char *kh)
{
    char out[256];
    for (time_t end = time(NULL) + WAIT_S; time(NULL) < end; sleep(2))
        if (ssh_run(fip, kh, "echo ok", out, sizeof out) == 0 && !strcmp(out, "ok\n"))
            return;
    cr_assert_fail("no SSH to %s with the host key from the console", fip);
}

/* The application's page at http://FIP/. */
static void
http_get(const char *fip, char *out, size_t cap)
{
    char url[128], err[1024];
    snprintf(url, sizeof url, "http://%s/", fip);
    const char *argv[] = {CURL, "-sS", "--fail", "--max-time", "20", url, NULL};
    int rc = run(argv, out, cap, err, sizeof err);
    cr_assert_eq(rc, 0, "GET %s: %s", url, err);
}

static void
wait_volume(const char *status)
{
    for (time_t end = time(NULL) + WAIT_S; time(NULL) < end; sleep(2)) {
        json_t *v = os_json("target", "volume", "show", g_vol_id, NULL);
        bool ok = !strcmp(str(v, "status"), status);
        bool bad = !strncmp(str(v, "status"), "error", 5);
        json_decref(v);
        cr_assert(!bad, "volume %s went to an error state", g_vol_id);
        if (ok)
            return;
    }
    cr_assert_fail("volume %s never became %s", g_vol_id, status);
}

TestSuite(guests, .init = setup, .fini = teardown, .timeout = 3000);

Test(guests, boot_ssh_app_snapshot_to_target_volume)
{
    char sfip[64], tfip[64], khs[1200], kht[1200], cmd[1024];
    static char out[1 << 16], want[1 << 12];
    unsigned char rnd[16];
    char token[33];
    FILE *ur = fopen("/dev/urandom", "r");
    cr_assert(ur && fread(rnd, 1, sizeof rnd, ur) == sizeof rnd);
    fclose(ur);
    for (int i = 0; i < 16; i++)
        sprintf(token + 2 * i, "%02x", rnd[i]);

    /* A real guest in project source: console host key, SSH, the application. */
    project_setup("source");
    boot("source", 0, env_get("DEVCLOUD_GUEST_IMAGE"), sfip, sizeof sfip);
    snprintf(khs, sizeof khs, "%s/known_hosts-source", g_dir);
    trust_console_host_key("source", sfip, khs);
    wait_ssh(sfip, khs);
    http_get(sfip, out, sizeof out);
    cr_expect(strstr(out, "greeting = Hello from a FluidCloud guest"),
              "the application's page: %.300s", out);
    snprintf(cmd, sizeof cmd,
             "sed -i 's/^greeting = .*/greeting = rewritten %s/' /etc/app/app.conf", token);
    cr_assert_eq(ssh_run(sfip, khs, cmd, out, sizeof out), 0, "rewriting app.conf");
    http_get(sfip, out, sizeof out);
    char greet[128];
    snprintf(greet, sizeof greet, "greeting = rewritten %s", token);
    cr_assert(strstr(out, greet), "the rewritten config is not served: %.300s", out);

    /* Data written in the guest: a token and 1 MiB of random bytes, flushed. */
    snprintf(cmd, sizeof cmd,
             "mkdir -p /root/fluid && echo %s >/root/fluid/token && "
             "dd if=/dev/urandom of=/root/fluid/blob bs=65536 count=16 2>/dev/null && sync && "
             "sha256sum /root/fluid/token /root/fluid/blob", token);
    cr_assert_eq(ssh_run(sfip, khs, cmd, want, sizeof want), 0, "writing in the source guest");
    cr_assert(strstr(want, "/root/fluid/blob"), "sha256sum output: %s", want);

    /* Snapshot: an active image holding real data, still bound to the real-guest host. */
    json_t *im = os_json("source", "server", "image", "create", "--name", g_tag, "--wait",
                         g_tag, NULL);
    snprintf(g_snap_id, sizeof g_snap_id, "%s", str(im, "id"));
    json_decref(im);
    cr_assert(g_snap_id[0], "no snapshot id");
    im = os_json("source", "image", "show", g_snap_id, NULL);
    cr_assert_str_eq(str(im, "status"), "active");
    cr_assert_gt(json_integer_value(json_object_get(im, "size")), 1 << 20,
                 "the snapshot holds no data");
    json_t *props = json_object_get(im, "properties");
    char trait[128];
    snprintf(trait, sizeof trait, "trait:%s", env_get("DEVCLOUD_GUEST_TRAIT"));
    cr_expect_str_eq(str(props, trait), "required", "the snapshot lost %s", trait);
    json_decref(im);

    /* The snapshot shared with project target and booted there. */
    json_t *tok = os_json("target", "token", "issue", NULL);
    char tproj[64];
    snprintf(tproj, sizeof tproj, "%s", str(tok, "project_id"));
    json_decref(tok);
    os_do("source", "image", "set", "--shared", g_snap_id, NULL);
    os_do("source", "image", "add", "project", g_snap_id, tproj, NULL);
    os_do("target", "image", "set", "--accept", g_snap_id, NULL);
    project_setup("target");
    boot("target", 1, g_snap_id, tfip, sizeof tfip);
    snprintf(kht, sizeof kht, "%s/known_hosts-target", g_dir);
    trust_console_host_key("target", tfip, kht);
    wait_ssh(tfip, kht);
    cr_assert_eq(ssh_run(tfip, kht, "sha256sum /root/fluid/token /root/fluid/blob", out,
                         sizeof out), 0, "the files are not in the target guest");
    cr_assert_str_eq(out, want, "the target guest's files differ from the source guest's");
    cr_assert_eq(ssh_run(tfip, kht, "cat /root/fluid/token", out, sizeof out), 0);
    out[strcspn(out, "\n")] = 0;
    cr_assert_str_eq(out, token);
    http_get(tfip, out, sizeof out);
    cr_assert(strstr(out, greet), "the target's application lost the rewritten config: %.300s",
              out);

    /* A volume attached in target: /dev/vdb, mounted on /data, written. */
    json_t *v = os_json("target", "volume", "create", "--size", "1", g_tag, NULL);
    snprintf(g_vol_id, sizeof g_vol_id, "%s", str(v, "id"));
    json_decref(v);
    wait_volume("available");
    os_do("target", "server", "add", "volume", g_tag, g_vol_id, NULL);
    wait_volume("in-use");
    snprintf(cmd, sizeof cmd,
             "data-mount --wait 300 >/dev/null && test -b /dev/vdb && echo %s >/data/token && "
             "sync && cat /data/token && grep '^/dev/vdb /data ' /proc/mounts", token);
    cr_assert_eq(ssh_run(tfip, kht, cmd, out, sizeof out), 0, "/dev/vdb on /data: %s", out);
    cr_expect(!strncmp(out, token, 32), "the volume's file: %s", out);
    cr_expect(strstr(out, "/dev/vdb /data "), "/dev/vdb is not on /data: %s", out);
}
