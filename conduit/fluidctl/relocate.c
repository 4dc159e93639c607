/* SPDX-License-Identifier: Apache-2.0 */
/* fluidctl relocate: builds a RelocationRequest without a plan (the conduit plans it with
 * fluid_cloud, as `fluidctl plan` shows), or takes a request file, publishes it like
 * `fluidctl submit` and, with --watch, follows it like `fluidctl watch`. The default
 * relocation id derives from the clouds and the selector, so running the same command twice
 * names the same relocation and the conduit does nothing the second time. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "ctl.h"
#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/sha256.h"

static const char usage_text[] =
    "usage: fluidctl relocate --from SRC --to DST (--server NAME|ID ... | --tag TAG)\n"
    "                         [--relocation-id ID] [--disk-format FMT] [--exact-flavor]\n"
    "                         [--rules FILE] [--volume-method image|ssh]\n"
    "                         [--cleanup-on-failure] [--keep-intermediate]\n"
    "                         [--print] [--watch [--json] [--timeout SECONDS]]\n"
    "       fluidctl relocate --request FILE|- [--watch [--json] [--timeout SECONDS]]\n"
    "  --from, --to        the clouds, by their clouds.yaml names (the conduit's)\n"
    "  --server, --tag     which servers of SRC\n"
    "  --relocation-id ID  default: r-<16 hex> derived from the clouds and the selector\n"
    "  --disk-format FMT   image format wanted on the target (options.disk_format)\n"
    "  --exact-flavor      refuse a closest-fitting flavor (options.exact_flavor)\n"
    "  --rules FILE        config rewrite rules for the relocated servers (options.rules)\n"
    "  --volume-method M   how volumes travel: image (default) or ssh (options.volume_method)\n"
    "  --cleanup-on-failure  on failure, delete what the relocation made on the target\n"
    "  --keep-intermediate keep the snapshots and transfer images once done\n"
    "                      (options.keep_intermediate; by default they are deleted)\n"
    "  --print             print the request instead of publishing it\n"
    "  --request FILE      publish this RelocationRequest (as fluidctl submit)\n"
    "  --watch             show the relocation live (one line per server and volume)\n"
    "                      until it ends, then its overview; --json: JSON lines\n";

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* r-<16 hex of sha256("fluidctl relocate", from, to, sorted servers, tag)>. */
static void
derive_id(const char *from, const char *to, const char **servers, size_t n, const char *tag,
          char out[24])
{
    qsort(servers, n, sizeof *servers, cmp_str);
    struct fc_sha256 h;
    uint8_t d[32];
    char hex[65];
    fc_sha256_init(&h);
    const char *parts[] = {"fluidctl relocate", from, to};
    for (size_t i = 0; i < 3; i++)
        fc_sha256_update(&h, parts[i], strlen(parts[i]) + 1);
    for (size_t i = 0; i < n; i++)
        fc_sha256_update(&h, servers[i], strlen(servers[i]) + 1);
    fc_sha256_update(&h, "tag", 4);
    if (tag)
        fc_sha256_update(&h, tag, strlen(tag) + 1);
    fc_sha256_final(&h, d);
    fc_sha256_free(&h);
    fc_hex(d, 8, hex);
    snprintf(out, 24, "r-%.16s", hex);
}

struct ropts {
    const char *disk_format, *rules, *volume_method;
    bool exact, cleanup_on_failure, keep_intermediate;
};

static fc_rc read_request(const char *path, char **body);

static fc_rc
build_request(const char *from, const char *to, const char **servers, size_t n,
              const char *tag, const char *rid, const struct ropts *ro, char **body)
{
    char idbuf[24], key[FC_KEY_MAX + 1];
    if (!rid) {
        derive_id(from, to, servers, n, tag, idbuf);
        rid = idbuf;
    }
    snprintf(key, sizeof key, "relocate/%s", rid);
    json_auto_t *sel = json_object();
    if (n) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_string(servers[i]));
        json_object_set_new(sel, "servers", arr);
    } else {
        json_object_set_new(sel, "tag", json_string(tag));
    }
    json_auto_t *opt = json_object();
    if (ro->disk_format)
        json_object_set_new(opt, "disk_format", json_string(ro->disk_format));
    if (ro->exact)
        json_object_set_new(opt, "exact_flavor", json_true());
    if (ro->volume_method)
        json_object_set_new(opt, "volume_method", json_string(ro->volume_method));
    if (ro->cleanup_on_failure)
        json_object_set_new(opt, "cleanup_on_failure", json_true());
    if (ro->keep_intermediate)
        json_object_set_new(opt, "keep_intermediate", json_true());
    if (ro->rules) {
        char *doc = NULL;
        fc_rc rc = read_request(ro->rules, &doc);
        if (rc != FC_OK)
            return rc;
        json_t *d = json_string(doc);
        free(doc);
        if (!d)
            return FC_ERR(FC_E_INVALID, "--rules %s: not UTF-8 text", ro->rules);
        json_object_set_new(opt, "rules", d);
    }
    json_auto_t *j = json_pack("{s:s, s:s, s:s, s:{s:s}, s:{s:s}, s:O}", "schema",
                               FC_SCHEMA_REQUEST, "relocation_id", rid, "idempotency_key", key,
                               "source", "cloud", from, "target", "cloud", to, "selector", sel);
    if (!j)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    if (json_object_size(opt))
        json_object_set(j, "options", opt);
    *body = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    return *body ? FC_OK : FC_ERR(FC_E_NOMEM, "out of memory");
}

static fc_rc
read_request(const char *path, char **body)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    if (!f)
        return FC_ERRNO(FC_E_NOTFOUND, "%s", path);
    size_t cap = FC_MSG_MAX_BYTES + 2, got;
    char *b = malloc(cap);
    if (!b) {
        if (f != stdin)
            fclose(f);
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    got = fread(b, 1, cap - 1, f);
    bool bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad) {
        free(b);
        return FC_ERR(FC_E_IO, "%s: read error", path);
    }
    b[got] = '\0';
    *body = b;
    return FC_OK;
}

int
fc_ctl_relocate(int argc, char **argv)
{
    static const struct option lo[] = {
        {"from", required_argument, NULL, 'f'},   {"to", required_argument, NULL, 't'},
        {"server", required_argument, NULL, 's'}, {"tag", required_argument, NULL, 'g'},
        {"relocation-id", required_argument, NULL, 'r'},
        {"disk-format", required_argument, NULL, 'd'},
        {"exact-flavor", no_argument, NULL, 'e'}, {"request", required_argument, NULL, 'R'},
        {"rules", required_argument, NULL, 'u'},
        {"volume-method", required_argument, NULL, 'v'},
        {"cleanup-on-failure", no_argument, NULL, 'c'},
        {"keep-intermediate", no_argument, NULL, 'K'},
        {"print", no_argument, NULL, 'p'},        {"watch", no_argument, NULL, 'w'},
        {"json", no_argument, NULL, 'j'},         {"timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *from = NULL, *to = NULL, *tag = NULL, *rid = NULL, *file = NULL,
               *timeout = NULL;
    struct ropts ro = {0};
    bool print = false, watch = false, json = false;
    FC_AUTOFREE const char **servers = calloc((size_t)argc + 1, sizeof *servers);
    size_t n = 0;
    int ch;
    if (!servers)
        return fc_ctl_fail("relocate", FC_ERR(FC_E_NOMEM, "out of memory"));
    while ((ch = getopt_long(argc, argv, "f:t:s:g:r:d:eR:u:v:cKpwjT:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 's': servers[n++] = optarg; break;
        case 'g': tag = optarg; break;
        case 'r': rid = optarg; break;
        case 'd': ro.disk_format = optarg; break;
        case 'e': ro.exact = true; break;
        case 'u': ro.rules = optarg; break;
        case 'v': ro.volume_method = optarg; break;
        case 'c': ro.cleanup_on_failure = true; break;
        case 'K': ro.keep_intermediate = true; break;
        case 'R': file = optarg; break;
        case 'p': print = true; break;
        case 'w': watch = true; break;
        case 'j': json = true; break;
        case 'T': timeout = optarg; break;
        case 'h': fputs(usage_text, stdout); return FC_CTL_OK;
        default: fputs(usage_text, stderr); return FC_CTL_USAGE;
        }
    }
    bool by_args = from || to || n || tag || rid || ro.disk_format || ro.exact || ro.rules ||
                   ro.volume_method || ro.cleanup_on_failure || ro.keep_intermediate;
    if (ro.volume_method && strcmp(ro.volume_method, "image") != 0 &&
        strcmp(ro.volume_method, "ssh") != 0) {
        fprintf(stderr, "fluidctl relocate: --volume-method: \"%s\" is not image or ssh\n",
                ro.volume_method);
        return FC_CTL_USAGE;
    }
    if (optind != argc || (file && by_args) ||
        (!file && (!from || !to || (!!n + !!tag) != 1)) || ((json || timeout) && !watch)) {
        fprintf(stderr, "fluidctl relocate: --from, --to and one of --server, --tag (or "
                        "--request FILE alone) are needed; --json and --timeout go with "
                        "--watch\n");
        fputs(usage_text, stderr);
        return FC_CTL_USAGE;
    }
    FC_AUTOFREE char *body = NULL;
    fc_rc rc = file ? read_request(file, &body)
                    : build_request(from, to, servers, n, tag, rid, &ro, &body);
    if (rc != FC_OK)
        return fc_ctl_fail("relocate", rc);
    FC_AUTO(request) struct fc_request *r = NULL;
    if ((rc = fc_request_parse(body, strlen(body), &r)) != FC_OK) {
        fprintf(stderr, "fluidctl relocate: %s: %s\n", file ? file : "request", fc_error_msg());
        return fc_ctl_exit_for(rc);
    }
    if (print) {
        puts(body);
        return FC_CTL_OK;
    }
    struct fc_amqp *a = NULL;
    if ((rc = fc_ctl_connect(&a)) != FC_OK)
        return fc_ctl_fail("relocate", rc);
    struct fc_amqp_msg m = {.exchange = "", .routing_key = FC_AMQP_Q_REQUESTS, .body = body,
                            .len = strlen(body), .message_id = r->idempotency_key,
                            .mandatory = true};
    rc = fc_amqp_publish(a, &m);
    fc_amqp_close(a);
    if (rc != FC_OK)
        return fc_ctl_fail("relocate", rc);
    if (!watch) {
        printf("%s\n", r->relocation_id);
        return FC_CTL_OK;
    }
    if (!json)
        fprintf(stderr, "relocation %s submitted\n", r->relocation_id);
    double t = timeout ? atof(timeout) : 0;
    if (t < 0) {
        fprintf(stderr, "fluidctl relocate: --timeout: not a positive number\n");
        return FC_CTL_USAGE;
    }
    return fc_ctl_live(r->relocation_id, json, t);
}
