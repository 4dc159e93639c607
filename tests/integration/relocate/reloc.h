/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers of the relocation tests (devcloud + RabbitMQ fixtures): a small service made on
 * project `source` through the API, the fake driver's snapshot made beforehand, the conduit
 * and brokers started, fluidctl run, and the target's resources listed by the marks a
 * relocation leaves (for "nothing new" and "as before" checks). */
#ifndef FLUID_TEST_RELOC_H
#define FLUID_TEST_RELOC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "fluid/cloud/os.h"
#include "helpers.h"

#define PUBKEY                                                                                 \
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIChDy7K0MJJ4z6mFyJ0oVEMNNnkQuOGfpxfF5Z/V/nzU "       \
    "relocate-test"

struct svc {
    char sfx[32], net[64], subnet[64], key[64], sga[64], sgb[64], server[64];
    char *net_id, *sga_id, *sgb_id, *server_id, *flavor_id;
};

/* What the target holds of the service's copies: counts, for "nothing new" checks. */
struct counts {
    size_t servers, keys, groups, images, networks, rules_a, rules_b;
};

/* The clouds' passwords (from the fixture's clouds.yaml) and a planted wrong one. */
extern char *pw_src, *pw_dst, planted[64];

/* dc_setup, debug JSON logs, the passwords read. */
void rl_setup(void);
const char *rs(const json_t *o, const char *k);
/* Items of a list whose "name" is exactly name (new array). */
json_t *named(struct fc_os *os, enum fc_os_service svc, const char *path, const char *key,
              const char *name);
size_t count_named(struct fc_os *os, enum fc_os_service svc, const char *path, const char *key,
                   const char *name);
char *id_of(const json_t *reply, const char *key);
/* The service on the source (suffix rl<pid><tag>): keypair, network, subnet, two groups whose
 * rules name each other, a server (ACTIVE) in both groups with metadata. */
void make_service(struct fc_os *os, struct svc *s, const char *tag);
void target_counts(struct fc_os *os, const char *rid, const struct svc *s, struct counts *c);
/* The relocated service read back from the target (cr_assert on every field). */
void check_target(struct fc_os *os, const char *rid, const struct svc *s);
/* Every *.log of dir: neither cloud's password, nor the planted one, nor a Keystone token. */
void logs_hold_no_password(const char *dir);
/* A whole file (NUL-terminated, may hold NULs: *len); cr_assert when unreadable. */
char *slurp_file(const char *path, size_t *len);
/* Fails if the len bytes of buf hold secret. */
void bytes_no_secret(const char *buf, size_t len, const char *secret, const char *what);
/* The fixture's clouds.yaml plus cloud `bad` (source's user, planted password). */
void write_clouds(const char *path, const char *bad);
pid_t broker(const struct tc *t, const char *id);
/* fluid-openstack snapshot --test-upload: the snapshot the plan of rid will reuse. */
void prefill_snapshot(const struct tc *t, const char *rid, const struct svc *s);
/* clouds.yaml (with cloud `bad`), conduit.conf, the conduit and two brokers. extra_conf:
 * the conduit's --config file path is written to conf (>= 1200 bytes). */
void start_stack(struct tc *t, const char *bad, char *conf);
/* fluidctl relocate --from --to target --server --watch --timeout 1500 [--relocation-id]
 * [extra...]; returns the exit status, stdout in out. */
int relocate(const struct tc *t, const char *from, const char *server, const char *rid,
             const char *const *extra, char *out, size_t cap);
/* fluidctl ARGS...; exit status, stdout in out. */
int fluidctl(const struct tc *t, const char *const *args, char *out, size_t cap);
/* Deletes the service on both sides (best effort). */
void cleanup_cloud(struct fc_os *src, struct fc_os *dst, const char *rid, const struct svc *s);
/* Every resource of the target project, as {"servers":[ids], "keypairs":[names], ...}. */
json_t *target_ids(struct fc_os *dst);
/* The target's resources that carry rid's marks or its derived-name suffix, as
 * {"kind":[ "id name", ...]} (sorted, kinds with none left out). */
json_t *target_marked(struct fc_os *dst, const char *rid);
/* Whether id is in target_ids's list of kind. */
bool ids_have(const json_t *ids, const char *id);

#endif
