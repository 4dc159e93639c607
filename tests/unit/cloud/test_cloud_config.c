/* SPDX-License-Identifier: Apache-2.0 */
/* clouds.yaml, secure.yaml and OS_* variables: search path, merging, overrides and strict
 * errors that name the file and key (and never the password). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fluid/cloud/config.h"
#include "fluid/error.h"

static const char *SECRET = "s3cr3t-Pl4nted";

static const char yaml1[] =
    "clouds:\n"
    "  source:\n"
    "    auth:\n"
    "      auth_url: http://127.0.0.1:5000/v3\n"
    "      username: alice\n"
    "      password: s3cr3t-Pl4nted\n"
    "      project_name: source\n"
    "      user_domain_name: Default\n"
    "      project_domain_name: Default\n"
    "    region_name: RegionOne\n"
    "    interface: internal\n"
    "    identity_api_version: 3\n"
    "    verify: false\n"
    "    compute_api_version: \"2.60\"\n"
    "  appcred:\n"
    "    auth_type: v3applicationcredential\n"
    "    auth:\n"
    "      auth_url: https://keystone.example:5000\n"
    "      application_credential_id: abc123\n"
    "      application_credential_secret: s3cr3t-Pl4nted\n"
    "    cacert: /etc/ssl/private-ca.pem\n"
    "    regions: [RegionTwo, RegionThree]\n";

Test(config, parse_password_cloud)
{
    struct fc_cloud_config *c = NULL;
    cr_assert_eq(fc_cloud_config_parse(yaml1, strlen(yaml1), NULL, 0, "t.yaml", "source", &c),
                 FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(c->auth_url, "http://127.0.0.1:5000/v3");
    cr_assert_str_eq(c->username, "alice");
    cr_assert_str_eq(c->password, SECRET);
    cr_assert_str_eq(c->project_name, "source");
    cr_assert_str_eq(c->user_domain_name, "Default");
    cr_assert_str_eq(c->region_name, "RegionOne");
    cr_assert_str_eq(c->interface, "internal");
    cr_assert_str_eq(c->compute_api_version, "2.60");
    cr_assert_eq(c->auth_type, FC_AUTH_PASSWORD);
    cr_assert(!c->verify);
    cr_assert_eq(fc_cloud_config_check(c), FC_OK);
    fc_cloud_config_free(c);
}

Test(config, parse_appcred_cloud)
{
    struct fc_cloud_config *c = NULL;
    cr_assert_eq(fc_cloud_config_parse(yaml1, strlen(yaml1), NULL, 0, "t.yaml", "appcred", &c),
                 FC_OK, "%s", fc_error_msg());
    cr_assert_eq(c->auth_type, FC_AUTH_APPCRED);
    cr_assert_str_eq(c->app_cred_id, "abc123");
    cr_assert_str_eq(c->cacert, "/etc/ssl/private-ca.pem");
    cr_assert_str_eq(c->region_name, "RegionTwo");
    cr_assert(c->verify, "TLS is verified unless the file says otherwise");
    cr_assert_eq(fc_cloud_config_check(c), FC_OK);
    fc_cloud_config_free(c);
}

Test(config, secure_yaml_merges_over)
{
    const char base[] = "clouds:\n  x:\n    auth:\n      auth_url: http://h/v3\n"
                        "      username: u\n      project_name: p\n";
    const char sec[] = "clouds:\n  x:\n    auth:\n      password: s3cr3t-Pl4nted\n";
    struct fc_cloud_config *c = NULL;
    cr_assert_eq(fc_cloud_config_parse(base, strlen(base), sec, strlen(sec), "b", "x", &c), FC_OK,
                 "%s", fc_error_msg());
    cr_assert_str_eq(c->password, SECRET);
    cr_assert_str_eq(c->username, "u");
    fc_cloud_config_free(c);
}

static void
assert_error(const char *yaml, const char *name, fc_rc want, const char *needle)
{
    struct fc_cloud_config *c = NULL;
    fc_rc rc = fc_cloud_config_parse(yaml, strlen(yaml), NULL, 0, "bad.yaml", name, &c);
    cr_assert_eq(rc, want, "rc %d for %s: %s", rc, needle, fc_error_msg());
    cr_assert(strstr(fc_error_msg(), needle), "message '%s' lacks '%s'", fc_error_msg(), needle);
    cr_assert(!strstr(fc_error_msg(), SECRET), "secret in: %s", fc_error_msg());
    cr_assert_null(c);
}

Test(config, storage_ssh_and_endpoint_overrides)
{
    const char *y = "clouds:\n  x:\n    auth:\n      auth_url: http://k:5000\n"
                    "    image_endpoint_override: http://127.0.0.1:9293\n"
                    "    block_storage_endpoint_override: http://c:8776/v3/p\n"
                    "    storage_ssh:\n      host: st1\n      port: 2222\n      user: u\n"
                    "      identity: /k\n      known_hosts: /kh\n"
                    "      path: /srv/nfs/volume-{id}\n";
    struct fc_cloud_config *c = NULL;
    cr_assert_eq(fc_cloud_config_parse(y, strlen(y), NULL, 0, "t.yaml", "x", &c), FC_OK, "%s",
                 fc_error_msg());
    cr_assert_str_eq(c->image_override, "http://127.0.0.1:9293");
    cr_assert_str_eq(c->volume_override, "http://c:8776/v3/p");
    cr_assert_null(c->compute_override);
    cr_assert_str_eq(c->storage_host, "st1");
    cr_assert_str_eq(c->storage_port, "2222");
    cr_assert_str_eq(c->storage_user, "u");
    cr_assert_str_eq(c->storage_identity, "/k");
    cr_assert_str_eq(c->storage_known_hosts, "/kh");
    cr_assert_str_eq(c->storage_path, "/srv/nfs/volume-{id}");
    fc_cloud_config_free(c);
    assert_error("clouds:\n  x:\n    storage_ssh: [a]\n", "x", FC_E_INVALID,
                 "clouds.x.storage_ssh must be a mapping");
    assert_error("clouds:\n  x:\n    storage_ssh:\n      host: h\n      path: /v-{id}\n"
                 "      pasword: x\n", "x", FC_E_INVALID, "clouds.x.storage_ssh.pasword: "
                 "unknown key");
    assert_error("clouds:\n  x:\n    storage_ssh:\n      path: /v-{id}\n", "x",
                 FC_E_INVALID, "storage_ssh needs host and path");
    assert_error("clouds:\n  x:\n    storage_ssh:\n      host: h\n      path: /v\n", "x",
                 FC_E_INVALID, "storage_ssh.path must be absolute and hold {id}");
    assert_error("clouds:\n  x:\n    storage_ssh:\n      host: h\n      path: /v-{id}\n"
                 "      port: 70000\n", "x", FC_E_INVALID, "storage_ssh.port must be 1-65535");
}

Test(config, strict_errors)
{
    assert_error(yaml1, "nope", FC_E_NOTFOUND, "cloud 'nope' not found in bad.yaml");
    assert_error("clouds: [1, 2]\n", "x", FC_E_INVALID, "'clouds' mapping missing");
    assert_error("clouds:\n  x:\n    auth: [a]\n", "x", FC_E_INVALID, "clouds.x.auth must be a mapping");
    assert_error("clouds:\n  x:\n    auth:\n      password: [s3cr3t-Pl4nted]\n", "x", FC_E_INVALID,
                 "clouds.x.auth.password must be a scalar");
    assert_error("clouds:\n  x:\n    verify: maybe\n", "x", FC_E_INVALID, "verify must be true or false");
    assert_error("clouds:\n  x:\n    auth_type: token\n", "x", FC_E_UNSUPPORTED, "auth_type 'token'");
    assert_error("clouds:\n  x:\n    identity_api_version: 2\n", "x", FC_E_UNSUPPORTED,
                 "only 3 is supported");
    assert_error("clouds:\n  x:\n    profile: vexxhost\n", "x", FC_E_UNSUPPORTED, "profile");
    assert_error("a: &x [1]\nb: *x\n", "x", FC_E_UNSUPPORTED, "aliases are not supported");
    assert_error("clouds:\n  x: 1\n  x: 2\n", "x", FC_E_INVALID, "duplicate key 'x'");
    assert_error("clouds:\n  x: {\n", "x", FC_E_INVALID, "YAML error at line");
    assert_error("--- 1\n--- 2\n", "x", FC_E_INVALID, "more than one YAML document");
}

Test(config, deep_nesting_is_bounded)
{
    char buf[4096] = "";
    for (int i = 0; i < 100; i++)
        strcat(buf, "[");
    assert_error(buf, "x", FC_E_INVALID, "");
}

Test(config, check_names_missing_field)
{
    const char y[] = "clouds:\n  x:\n    auth:\n      auth_url: http://h/v3\n      username: u\n";
    struct fc_cloud_config *c = NULL;
    cr_assert_eq(fc_cloud_config_parse(y, strlen(y), NULL, 0, "f.yaml", "x", &c), FC_OK);
    cr_assert_eq(fc_cloud_config_check(c), FC_E_INVALID);
    cr_assert(strstr(fc_error_msg(), "auth.password is missing"), "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "f.yaml"), "%s", fc_error_msg());
    fc_cloud_config_free(c);
}

/* ---- search path and environment ---- */

static char tmp[256];

static void
mk(const char *rel, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    for (char *s = p + strlen(tmp) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        mkdir(p, 0700);
        *s = '/';
    }
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void
setup_tmp(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/fluid-test-cloudcfg-%d-XXXXXX", (int)getpid());
    cr_assert_not_null(mkdtemp(tmp));
}

static void
rm_tmp(void)
{
    char cmd[600];
    /* test cleanup of our own temp folder; no shell: remove the known files */
    const char *files[] = {"cwd/clouds.yaml", "home/.config/openstack/clouds.yaml",
                           "home/.config/openstack/secure.yaml", "etc/clouds.yaml",
                           "explicit.yaml", "cwd", "home/.config/openstack", "home/.config",
                           "home", "etc", ""};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s/%s", tmp, files[i]);
        if (remove(cmd) != 0)
            rmdir(cmd);
    }
}

TestSuite(search, .init = setup_tmp, .fini = rm_tmp);

static const char yhome[] = "clouds:\n  c:\n    auth:\n      auth_url: http://home/v3\n"
                            "      username: u\n      project_name: p\n";
static const char yetc[] = "clouds:\n  c:\n    auth:\n      auth_url: http://etc/v3\n"
                           "      username: u\n      password: pw-etc\n";

Test(search, order_and_env)
{
    char home[512], etc[512], cwd[512];
    snprintf(home, sizeof home, "%s/home", tmp);
    snprintf(etc, sizeof etc, "%s/etc", tmp);
    snprintf(cwd, sizeof cwd, "%s/cwd", tmp);
    mkdir(cwd, 0700);
    mk("etc/clouds.yaml", yetc);
    char *env0[] = {NULL};
    struct fc_cloud_config *c = NULL;
    cr_assert_eq(fc_cloud_config_load("c", env0, cwd, home, etc, &c), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(c->auth_url, "http://etc/v3");
    fc_cloud_config_free(c);

    /* ~/.config/openstack wins over /etc/openstack; secure.yaml beside it adds the password */
    mk("home/.config/openstack/clouds.yaml", yhome);
    mk("home/.config/openstack/secure.yaml", "clouds:\n  c:\n    auth:\n      password: s3cr3t-Pl4nted\n");
    cr_assert_eq(fc_cloud_config_load("c", env0, cwd, home, etc, &c), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(c->auth_url, "http://home/v3");
    cr_assert_str_eq(c->password, SECRET);
    fc_cloud_config_free(c);

    /* ./clouds.yaml wins over both; OS_CLOUD names the cloud; OS_* override the file */
    mk("cwd/clouds.yaml", "clouds:\n  d:\n    auth:\n      auth_url: http://cwd/v3\n"
                          "      username: u\n      password: p\n");
    char *env1[] = {"OS_CLOUD=d", "OS_PASSWORD=s3cr3t-Pl4nted", "OS_REGION_NAME=R9", NULL};
    cr_assert_eq(fc_cloud_config_load(NULL, env1, cwd, home, etc, &c), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(c->name, "d");
    cr_assert_str_eq(c->auth_url, "http://cwd/v3");
    cr_assert_str_eq(c->password, SECRET);
    cr_assert_str_eq(c->region_name, "R9");
    fc_cloud_config_free(c);

    /* OS_CLIENT_CONFIG_FILE comes first */
    mk("explicit.yaml", "clouds:\n  e:\n    auth:\n      auth_url: http://explicit/v3\n");
    char ex[600];
    snprintf(ex, sizeof ex, "OS_CLIENT_CONFIG_FILE=%s/explicit.yaml", tmp);
    char *env2[] = {ex, NULL};
    cr_assert_eq(fc_cloud_config_load("e", env2, cwd, home, etc, &c), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(c->auth_url, "http://explicit/v3");
    fc_cloud_config_free(c);

    /* an unknown cloud names the file searched */
    cr_assert_eq(fc_cloud_config_load("zzz", env0, cwd, home, etc, &c), FC_E_NOTFOUND);
    cr_assert(strstr(fc_error_msg(), "cloud 'zzz' not found in"), "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "cwd/clouds.yaml"), "%s", fc_error_msg());
}

Test(search, no_file_lists_places)
{
    char home[512], etc[512], cwd[512];
    snprintf(home, sizeof home, "%s/home", tmp);
    snprintf(etc, sizeof etc, "%s/etc", tmp);
    snprintf(cwd, sizeof cwd, "%s/cwd", tmp);
    char *env0[] = {NULL};
    struct fc_cloud_config *c = NULL;
    cr_assert_eq(fc_cloud_config_load("c", env0, cwd, home, etc, &c), FC_E_NOTFOUND);
    cr_assert(strstr(fc_error_msg(), "no clouds.yaml found"), "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "/home/.config/openstack/clouds.yaml"), "%s", fc_error_msg());
    cr_assert(strstr(fc_error_msg(), "/etc/clouds.yaml"), "%s", fc_error_msg());
}

Test(search, env_only)
{
    char *env[] = {"OS_AUTH_URL=http://k:5000/v3", "OS_USERNAME=bob",
                   "OS_PASSWORD=s3cr3t-Pl4nted", "OS_PROJECT_NAME=p",
                   "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_ID=default",
                   "OS_INTERFACE=public", "OS_CACERT=/ca.pem", "OS_IDENTITY_API_VERSION=3",
                   "OS_REGION_NAME=", NULL};
    struct fc_cloud_config *c = NULL;
    cr_assert_eq(fc_cloud_config_load(NULL, env, "/nonexistent", "/nonexistent", "/nonexistent", &c),
                 FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(c->name, "envvars");
    cr_assert_str_eq(c->username, "bob");
    cr_assert_str_eq(c->project_domain_id, "default");
    cr_assert_str_eq(c->cacert, "/ca.pem");
    cr_assert_null(c->region_name, "an empty variable counts as unset");
    cr_assert_eq(fc_cloud_config_check(c), FC_OK);
    fc_cloud_config_free(c);

    char *env_ac[] = {"OS_AUTH_URL=http://k/v3", "OS_APPLICATION_CREDENTIAL_ID=id1",
                      "OS_APPLICATION_CREDENTIAL_SECRET=s3cr3t-Pl4nted", NULL};
    cr_assert_eq(fc_cloud_config_load(NULL, env_ac, "/x", "/x", "/x", &c), FC_OK);
    cr_assert_eq(c->auth_type, FC_AUTH_APPCRED);
    fc_cloud_config_free(c);

    char *none[] = {NULL};
    cr_assert_eq(fc_cloud_config_load(NULL, none, "/x", "/x", "/x", &c), FC_E_INVALID);
    cr_assert(strstr(fc_error_msg(), "OS_AUTH_URL is not set"), "%s", fc_error_msg());
}
