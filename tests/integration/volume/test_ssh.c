// SPDX-License-Identifier: Apache-2.0
// fluid_ssh against the real sshd fixture: host key verification (unknown, changed), key
// auth (right and wrong key), exec channels, SFTP file round trips and errors, and a
// session whose AES-CTR goes through fc_ssh_bulk_ctr().
#include <criterion/criterion.h>
#include <openssl/sha.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "fluid/error.h"
#include "fluid/spawn.h"
#include "fluid/ssh.h"
#include "fluid/spawn.h"

static struct sshd_env E;
static char tmpdir[600];

static void
setup(void)
{
    sshd_env_load(&E);
    snprintf(tmpdir, sizeof tmpdir, "%s/ssh-test-%d", getenv("FLUID_TEST_RUN_DIR"), getpid());
    mkdir(tmpdir, 0700);
}

static struct fc_ssh_opts
opts(void)
{
    return (struct fc_ssh_opts){.host = E.host, .port = E.port, .user = E.user,
                                .identity = E.identity, .known_hosts = E.known_hosts};
}

TestSuite(ssh, .init = setup);

Test(ssh, connect_exec_and_fingerprint)
{
    struct fc_ssh *s = NULL;
    struct fc_ssh_opts o = opts();
    cr_assert_eq(fc_ssh_connect(&o, &s), FC_OK, "%s", fc_error_msg());
    cr_assert(strncmp(fc_ssh_fingerprint(s), "SHA256:", 7) == 0);
    cr_assert_eq(strlen(fc_ssh_fingerprint(s)), 7 + 43);
    struct fc_ssh_chan *c = NULL;
    cr_assert_eq(fc_ssh_exec(s, "/bin/echo hello-from-exec", &c), FC_OK, "%s", fc_error_msg());
    char buf[64] = {0};
    cr_assert_eq(fc_ssh_chan_read_full(c, buf, 16, "echo output"), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(buf, "hello-from-exec\n");
    int st;
    fc_ssh_chan_close(c, &st);
    cr_assert_eq(st, 0);
    fc_ssh_free(s);
}

/* A session after fc_ssh_bulk_ctr(): libssh2's AES-CTR both ways comes from it (its
 * keystream count grows with the bytes moved) and 4 MiB go through `cat` and back intact. */
Test(ssh, bulk_ctr_session_round_trip)
{
    cr_assert_eq(fc_ssh_bulk_ctr(), FC_OK, "%s", fc_error_msg());
    uint64_t before = fc_ssh_bulk_ctr_bytes();
    struct fc_ssh *s = NULL;
    struct fc_ssh_opts o = opts();
    cr_assert_eq(fc_ssh_connect(&o, &s), FC_OK, "%s", fc_error_msg());
    struct fc_ssh_chan *c = NULL;
    cr_assert_eq(fc_ssh_exec(s, "/usr/bin/sha256sum", &c), FC_OK, "%s", fc_error_msg());
    static unsigned char buf[4 << 20];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 2654435761u >> 13);
    cr_assert_eq(fc_ssh_chan_write(c, buf, sizeof buf), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(fc_ssh_chan_send_eof(c), FC_OK, "%s", fc_error_msg());
    char out[65] = {0};
    cr_assert_eq(fc_ssh_chan_read_full(c, out, 64, "sha256sum output"), FC_OK, "%s",
                 fc_error_msg());
    unsigned char d[32];
    char hex[65];
    SHA256(buf, sizeof buf, d);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    cr_assert_str_eq(out, hex, "the bytes arrived changed");
    int st;
    fc_ssh_chan_close(c, &st);
    cr_assert_eq(st, 0);
    fc_ssh_free(s);
    cr_assert_geq(fc_ssh_bulk_ctr_bytes() - before, sizeof buf, "the session did not use it");
}

Test(ssh, unknown_host_key_is_refused_with_fingerprint)
{
    char kh[700];
    snprintf(kh, sizeof kh, "%s/empty_known_hosts", tmpdir);
    FILE *f = fopen(kh, "w");
    fclose(f);
    struct fc_ssh_opts o = opts();
    o.known_hosts = kh;
    struct fc_ssh *s = NULL;
    cr_assert_eq(fc_ssh_connect(&o, &s), FC_E_VERIFY);
    cr_assert_null(s);
    cr_assert(strstr(fc_error_msg(), "unknown host key"), "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "SHA256:"), "%s", fc_error_msg());
    /* The same fingerprint ssh-keygen prints. */
    char pub[700], out[512], fp[128] = {0};
    int st;
    snprintf(pub, sizeof pub, "%s/host_ed25519.pub", E.dir);
    const char *argv[] = {"/usr/bin/ssh-keygen", "-lf", pub, NULL};
    cr_assert_eq(fc_run(argv, out, sizeof out, NULL, 0, &st), FC_OK, "%s", fc_error_msg());
    cr_assert(sscanf(out, "%*s %127s", fp) == 1, "ssh-keygen printed: %s", out);
    cr_assert(strstr(fc_error_msg(), fp), "%s lacks %s", fc_error_msg(), fp);
}

Test(ssh, changed_host_key_is_refused)
{
    char kh[700], pub[700], type[64], key[512];
    snprintf(kh, sizeof kh, "%s/changed_known_hosts", tmpdir);
    snprintf(pub, sizeof pub, "%s.pub", E.wrong_identity);
    /* Another key recorded for this host: what a changed host key looks like. */
    FILE *in = fopen(pub, "r");
    cr_assert_not_null(in, "%s", pub);
    cr_assert_eq(fscanf(in, "%63s %511s", type, key), 2);
    fclose(in);
    FILE *outf = fopen(kh, "w");
    cr_assert_not_null(outf);
    fprintf(outf, "[%s]:%u %s %s\n", E.host, E.port, type, key);
    fclose(outf);
    struct fc_ssh_opts o = opts();
    o.known_hosts = kh;
    struct fc_ssh *s = NULL;
    cr_assert_eq(fc_ssh_connect(&o, &s), FC_E_VERIFY);
    cr_assert(strstr(fc_error_msg(), "HOST KEY CHANGED"), "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "SHA256:"), "%s", fc_error_msg());
}

Test(ssh, missing_known_hosts_is_refused)
{
    struct fc_ssh_opts o = opts();
    o.known_hosts = "/nonexistent/known_hosts";
    struct fc_ssh *s = NULL;
    cr_assert_eq(fc_ssh_connect(&o, &s), FC_E_VERIFY);
    cr_assert(strstr(fc_error_msg(), "SHA256:"), "%s", fc_error_msg());
}

Test(ssh, wrong_key_is_refused)
{
    struct fc_ssh_opts o = opts();
    o.identity = E.wrong_identity;
    struct fc_ssh *s = NULL;
    cr_assert_eq(fc_ssh_connect(&o, &s), FC_E_AUTH);
    cr_assert(strstr(fc_error_msg(), "refused"), "%s", fc_error_msg());
}

Test(ssh, connection_refused_is_net_error)
{
    struct fc_ssh_opts o = opts();
    o.port = 1;
    struct fc_ssh *s = NULL;
    cr_assert_eq(fc_ssh_connect(&o, &s), FC_E_NET, "%s", fc_error_msg());
}

Test(ssh, sftp_round_trip_and_errors)
{
    struct fc_ssh *s = NULL;
    struct fc_ssh_opts o = opts();
    cr_assert_eq(fc_ssh_connect(&o, &s), FC_OK, "%s", fc_error_msg());
    char path[800];
    snprintf(path, sizeof path, "%s/a file; $(touch pwned) 'q'.txt", tmpdir);
    const char *text = "key = value\n";
    cr_assert_eq(fc_sftp_write_file(s, path, text, strlen(text), 0600), FC_OK, "%s",
                 fc_error_msg());
    char *buf = NULL;
    size_t len = 0;
    cr_assert_eq(fc_sftp_read_file(s, path, 1 << 20, &buf, &len), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(len, strlen(text));
    cr_assert_str_eq(buf, text);
    free(buf);
    cr_assert_eq(access("pwned", F_OK), -1);
    struct fc_sftp_stat st;
    cr_assert_eq(fc_sftp_stat(s, path, &st), FC_OK);
    cr_assert_eq(st.size, strlen(text));
    cr_assert(S_ISREG(st.mode));

    char missing[800];
    snprintf(missing, sizeof missing, "%s/no/such/dir/file", tmpdir);
    cr_assert_eq(fc_sftp_read_file(s, missing, 100, &buf, &len), FC_E_NOTFOUND);
    cr_assert(strstr(fc_error_msg(), "no such file"), "%s", fc_error_msg());
    cr_assert_eq(fc_sftp_write_file(s, missing, "x", 1, 0600), FC_E_NOTFOUND, "%s",
                 fc_error_msg());

    struct fc_sftp_file *f = NULL;
    cr_assert_eq(fc_sftp_open(s, path, FC_SFTP_WRITE, 0, &f), FC_OK);
    fc_sftp_seek(f, 1 << 20);
    cr_assert_eq(fc_sftp_write(f, "end", 3), FC_OK);
    cr_assert_eq(fc_sftp_close(f), FC_OK);
    struct stat lst;
    cr_assert_eq(stat(path, &lst), 0);
    cr_assert_eq(lst.st_size, (1 << 20) + 3);
    cr_assert_lt(lst.st_blocks * 512, 1 << 20, "seek left a hole");
    fc_ssh_free(s);
}

Test(ssh, url_parse)
{
    struct fc_ssh_url u;
    cr_assert_eq(fc_ssh_url_parse("ssh://bob@example.org:2222/var/x y", &u), FC_OK);
    cr_assert_str_eq(u.user, "bob");
    cr_assert_str_eq(u.host, "example.org");
    cr_assert_eq(u.port, 2222);
    cr_assert_str_eq(u.path, "/var/x y");
    cr_assert_eq(fc_ssh_url_parse("ssh://[::1]/p", &u), FC_OK);
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(fc_ssh_url_parse("ssh://bob:secret@h/p", &u), FC_E_INVALID);
    cr_assert(!strstr(fc_error_msg(), "secret"));
    cr_assert_eq(fc_ssh_url_parse("ssh://h:99999/p", &u), FC_E_INVALID);
    cr_assert_eq(fc_ssh_url_parse("ssh://h", &u), FC_E_INVALID);
    cr_assert_eq(fc_ssh_url_parse("ssh://h;rm/p", &u), FC_E_INVALID);
    cr_assert(fc_ssh_safe_word("/usr/libexec/fluidcloud/fluid-volume"));
    cr_assert(!fc_ssh_safe_word("/tmp/a b"));
    cr_assert(!fc_ssh_safe_word("/tmp/$(x)"));
    cr_assert(!fc_ssh_safe_word("-oProxyCommand"));
}

/* Without --identity, the keys of ssh-agent are used (a private agent for this test). */
Test(ssh, agent_auth_and_no_agent)
{
    char sock[700];
    snprintf(sock, sizeof sock, "%s/agent.sock", tmpdir);
    const char *agent[] = {"/usr/bin/ssh-agent", "-D", "-a", sock, NULL};
    struct fc_spawn sp = {.argv = agent, .fd = {-1, -1, -1}};
    pid_t apid;
    cr_assert_eq(fc_spawn(&sp, &apid), FC_OK);
    for (int i = 0; i < 100 && access(sock, F_OK) != 0; i++)
        usleep(20000); /* until the agent listens; no timing is asserted */
    setenv("SSH_AUTH_SOCK", sock, 1);
    const char *add[] = {"/usr/bin/ssh-add", "-q", E.identity, NULL};
    char err[1024];
    int st;
    cr_assert_eq(fc_run(add, NULL, 0, err, sizeof err, &st), FC_OK);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "ssh-add: %s", err);
    struct fc_ssh_opts o = opts();
    o.identity = NULL;
    struct fc_ssh *s = NULL;
    fc_rc rc = fc_ssh_connect(&o, &s);
    kill(apid, SIGTERM);
    waitpid(apid, &st, 0);
    cr_assert_eq(rc, FC_OK, "%s", fc_error_msg());
    fc_ssh_free(s);
    unsetenv("SSH_AUTH_SOCK");
    cr_assert_eq(fc_ssh_connect(&o, &s), FC_E_AUTH);
    cr_assert(strstr(fc_error_msg(), "ssh-agent"), "%s", fc_error_msg());
}
