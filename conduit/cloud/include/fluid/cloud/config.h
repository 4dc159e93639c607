/* SPDX-License-Identifier: Apache-2.0 */
/* Cloud configuration as the openstack CLI reads it: clouds.yaml (+ secure.yaml) from
 * OS_CLIENT_CONFIG_FILE, ./, ~/.config/openstack/, /etc/openstack/, and OS_* variables.
 * Parsed with libyaml, strictly: unknown shapes are errors that name the file and key. */
#ifndef FLUID_CLOUD_CONFIG_H
#define FLUID_CLOUD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "fluid/rc.h"

enum fc_auth_type { FC_AUTH_PASSWORD = 0, FC_AUTH_APPCRED = 1 };

struct fc_cloud_config {
    char *name;               /* the cloud's name ("envvars" when built from OS_* only) */
    char *origin;             /* file it came from, or "environment" (for messages) */
    enum fc_auth_type auth_type;
    char *auth_url;
    char *username, *user_id, *password;
    char *user_domain_name, *user_domain_id;
    char *project_name, *project_id, *project_domain_name, *project_domain_id;
    char *app_cred_id, *app_cred_name, *app_cred_secret;
    char *region_name;
    char *interface;          /* public (default), internal, admin */
    bool verify;              /* TLS verification, true unless `verify: false` */
    char *cacert, *cert, *key;
    /* <service>_api_version from clouds.yaml (compute, volume, image, network) */
    char *compute_api_version, *volume_api_version;
    /* <service>_endpoint_override (compute, network, image, block_storage): used instead of
     * the catalog's endpoint for that service (as openstacksdk does) */
    char *compute_override, *network_override, *image_override, *volume_override;
    /* storage_ssh: {host, port, user, identity, known_hosts, path}: how the volume method
     * "ssh" reaches this cloud's block-storage backend (FluidCloud's own key; the openstack
     * CLI ignores it). `path` is a template where {id} is the volume id. NULL: not set. */
    char *storage_host, *storage_port, *storage_user, *storage_identity, *storage_known_hosts,
        *storage_path;
};

/* Loads cloud `name` (NULL: OS_CLOUD, else the OS_* variables alone). `env` is the
 * environment to read (NULL: environ); `cwd_dir`, `home` and `etc_dir` override the search
 * folders (NULL: ".", $HOME, "/etc/openstack"), for tests. OS_* variables override the
 * file's values as they do for the openstack CLI. Errors name the file and key; a missing
 * cloud lists the files searched. */
fc_rc fc_cloud_config_load(const char *name, char *const *env, const char *cwd_dir,
                           const char *home, const char *etc_dir,
                           struct fc_cloud_config **out);

/* Parses clouds.yaml text and picks cloud `name` (no env, no search): for tests and fuzzing.
 * `origin` names the text in errors. `secure` (may be NULL) is secure.yaml text merged over. */
fc_rc fc_cloud_config_parse(const char *yaml, size_t len, const char *secure, size_t slen,
                            const char *origin, const char *name,
                            struct fc_cloud_config **out);

/* Checks that the config can authenticate (auth_url, a user or application credential). */
fc_rc fc_cloud_config_check(const struct fc_cloud_config *c);

/* Frees (and wipes the secrets of) a config; NULL is fine. */
void fc_cloud_config_free(struct fc_cloud_config *c);

#endif
