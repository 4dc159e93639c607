/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the OpenStack client's parsers of untrusted replies. The first byte
 * picks the parser, the rest is the reply body:
 *   0  error bodies (JSON of any service, Glance's HTML)   1  Keystone token + catalog
 *   2..12  resource list normalisers (servers ... security groups), body {"<key>": [...]} or [...]
 *   13 clouds.yaml                                          14 planning from a Topology */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/cloud/config.h"
#include "fluid/cloud/os.h"
#include "fluid/cloud/plan.h"
#include "fluid/cloud/resources.h"
#include "fluid/log.h"

static json_t *target;

static void
init(void)
{
    fc_log_min_level = FC_LOG_OFF;
    target = json_loads(
        "{\"flavors\":[{\"id\":\"1\",\"name\":\"m1.tiny\",\"vcpus\":1,\"ram_mb\":512,\"disk_gb\":1,"
        "\"extra_specs\":{}}],\"keypairs\":[],\"security_groups\":[{\"id\":\"d\",\"name\":\"default\"}],"
        "\"networks\":[{\"id\":\"x\",\"name\":\"public\",\"external\":true}],\"subnets\":[],"
        "\"routers\":[],\"images\":[],\"servers\":[],\"volumes\":[],\"volume_types\":[],"
        "\"has_volume\":true,\"disk_formats\":[\"qcow2\"]}",
        0, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!target)
        init();
    if (size < 1)
        return 0;
    unsigned sel = data[0] % 15;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char *text = malloc(len + 1);
    if (!text)
        return 0;
    memcpy(text, body, len);
    text[len] = '\0';
    if (sel == 0) {
        char out[512];
        fc_os_error_message(text, len, NULL, out, sizeof out);
        if (strlen(out) >= sizeof out)
            abort();
    } else if (sel == 1) {
        struct fc_os_token_info ti;
        if (fc_os_parse_token(text, len, "public", len % 2 ? "RegionOne" : NULL, &ti) == FC_OK)
            fc_os_token_info_clear(&ti);
    } else if (sel <= 12) {
        enum fc_res_kind kind = (enum fc_res_kind)((sel - 2) % FC_RES__COUNT);
        json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL), *out = NULL;
        json_t *arr = json_is_array(root) ? root : json_object_get(root, fc_res_list_key(kind));
        if (arr && fc_res_normalize_list(kind, arr, &out) == FC_OK)
            json_decref(out);
        json_decref(root);
    } else if (sel == 13) {
        struct fc_cloud_config *c = NULL;
        if (fc_cloud_config_parse(text, len, NULL, 0, "fuzz", "x", &c) == FC_OK) {
            fc_cloud_config_check(c);
            fc_cloud_config_free(c);
        }
    } else {
        json_t *topo = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL), *plan = NULL, *rep = NULL;
        struct fc_plan_opts o = {.src_cloud = "source", .dst_cloud = "target", .rules = "r.json"};
        if (topo && fc_plan_build(topo, target, &o, &plan, &rep) == FC_OK) {
            json_decref(plan);
            json_decref(rep);
        }
        json_decref(topo);
    }
    free(text);
    return 0;
}
