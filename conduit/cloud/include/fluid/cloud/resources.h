/* SPDX-License-Identifier: Apache-2.0 */
/* OpenStack resources as FluidCloud sees them: each service reply's raw objects are turned
 * into normalised objects holding only known fields, each type-checked and size-bounded
 * (replies are untrusted; an error names the list, index and field). Field names of the
 * normalised objects are those of the Topology message (docs/openstack.md). */
#ifndef FLUID_CLOUD_RESOURCES_H
#define FLUID_CLOUD_RESOURCES_H

#include <jansson.h>

#include "fluid/cloud/os.h"
#include "fluid/rc.h"

enum fc_res_kind {
    FC_RES_SERVER = 0,
    FC_RES_FLAVOR,
    FC_RES_KEYPAIR,
    FC_RES_IMAGE,
    FC_RES_VOLUME,
    FC_RES_NETWORK,
    FC_RES_SUBNET,
    FC_RES_ROUTER,
    FC_RES_PORT,
    FC_RES_FLOATING_IP,
    FC_RES_SECURITY_GROUP,
    FC_RES__COUNT
};

/* "server", "flavor", ... */
const char *fc_res_kind_name(enum fc_res_kind kind);
/* The reply key of the kind's list ("servers", "floatingips", ...). */
const char *fc_res_list_key(enum fc_res_kind kind);

/* Normalises one raw object (`where` names it in errors, e.g. "servers[3]"). */
fc_rc fc_res_normalize(enum fc_res_kind kind, const json_t *raw, const char *where, json_t **out);

/* Normalises a raw list reply's array: every element, or the first error. */
fc_rc fc_res_normalize_list(enum fc_res_kind kind, const json_t *raw_array, json_t **out);

/* Lists every resource of `kind` visible to the session's project (all pages), normalised.
 * `query` (may be NULL) is appended to the list path ("tags=web", "id=in:a,b"). */
fc_rc fc_res_list(struct fc_os *os, enum fc_res_kind kind, const char *query, json_t **out);

/* Several lists at once, one thread and connection each (at most 16): reqs[i].out gets each
 * result. On an error every list is still awaited, the outputs are dropped and the first
 * error (in the order of reqs) is returned. Requests and retries count on `os`. */
struct fc_res_req {
    enum fc_res_kind kind;
    const char *query; /* may be NULL */
    json_t *out;
};
fc_rc fc_res_list_parallel(struct fc_os *os, struct fc_res_req *reqs, size_t n);

/* Percent-encodes `s` for a query value into out (cap bytes); false if it does not fit. */
bool fc_url_escape(const char *s, char *out, size_t cap);

#endif
