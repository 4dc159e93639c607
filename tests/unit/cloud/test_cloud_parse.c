/* SPDX-License-Identifier: Apache-2.0 */
/* Reply parsers of the OpenStack client: error messages of every service (JSON and Glance's
 * HTML), the Keystone token and catalog, resource normalisers (strict, naming the field). */
#include <criterion/criterion.h>
#include <string.h>

#include "fluid/cloud/os.h"
#include "fluid/cloud/resources.h"
#include "fluid/error.h"

static void
msg_is(const char *body, const char *want)
{
    char out[512];
    fc_os_error_message(body, strlen(body), NULL, out, sizeof out);
    cr_assert_str_eq(out, want, "body %s", body);
}

Test(errmsg, every_service)
{
    msg_is("{\"error\":{\"code\":401,\"title\":\"Unauthorized\",\"message\":\"The request you "
           "have made requires authentication.\"}}",
           "The request you have made requires authentication.");
    msg_is("{\"badRequest\":{\"code\":400,\"message\":\"Invalid input for field/attribute "
           "keypair.\"}}",
           "Invalid input for field/attribute keypair.");
    msg_is("{\"itemNotFound\": {\"message\": \"Volume abc could not be found.\", \"code\": 404}}",
           "Volume abc could not be found.");
    msg_is("{\"NeutronError\":{\"type\":\"NetworkNotFound\",\"message\":\"Network x could not "
           "be found.\",\"detail\":\"\"}}",
           "Network x could not be found.");
    msg_is("{\"errors\":[{\"status\":409,\"title\":\"Conflict\",\"detail\":\"There was a "
           "conflict.\"}]}",
           "There was a conflict.");
    msg_is("<html>\n <head>\n  <title>403 Forbidden</title>\n </head>\n <body>\n  <h1>403 "
           "Forbidden</h1>\n  Attribute disk_format can be only replaced for a queued "
           "image.<br /><br />\n\n\n\n </body>\n</html>",
           "Attribute disk_format can be only replaced for a queued image.");
    msg_is("<html><body><h1>404 Not Found</h1>The resource &quot;x&quot; &amp; y.</body></html>",
           "The resource \"x\" & y.");
    msg_is("plain\ttext\r\nwith\x01 controls \xc3\xa9", "plain text with controls ??");
    msg_is("{\"message\": \"No image found with ID x<br /><br />\", \"code\": \"404 Not Found\"}",
           "No image found with ID x");
    msg_is("", "");
}

Test(errmsg, bounded)
{
    char big[5000], out[64];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    fc_os_error_message(big, strlen(big), NULL, out, sizeof out);
    cr_assert_eq(strlen(out), sizeof out - 1);
}

static const char token_body[] =
    "{\"token\":{\"expires_at\":\"2030-01-02T03:04:05.000000Z\","
    "\"user\":{\"id\":\"u1\",\"name\":\"source\"},\"project\":{\"id\":\"p1\",\"name\":\"source\"},"
    "\"catalog\":["
    " {\"type\":\"compute\",\"endpoints\":["
    "   {\"interface\":\"admin\",\"region_id\":\"RegionOne\",\"url\":\"http://admin:8774/v2.1\"},"
    "   {\"interface\":\"public\",\"region_id\":\"RegionTwo\",\"url\":\"http://two:8774/v2.1\"},"
    "   {\"interface\":\"public\",\"region_id\":\"RegionOne\",\"url\":\"http://one:8774/v2.1/\"}]},"
    " {\"type\":\"image\",\"endpoints\":["
    "   {\"interface\":\"public\",\"region_id\":\"RegionOne\",\"url\":\"http://one:9292\"}]},"
    " {\"type\":\"network\",\"endpoints\":["
    "   {\"interface\":\"public\",\"region\":\"RegionOne\",\"url\":\"http://one:9696/\"}]},"
    " {\"type\":\"volumev3\",\"endpoints\":["
    "   {\"interface\":\"public\",\"region_id\":\"RegionOne\",\"url\":\"http://v3:8776/v3/p1\"}]},"
    " {\"type\":\"block-storage\",\"endpoints\":["
    "   {\"interface\":\"public\",\"region_id\":\"RegionOne\",\"url\":\"http://bs:8776/v3/p1\"}]},"
    " {\"type\":\"placement\",\"endpoints\":[]}]}}";

Test(token, catalog_selection)
{
    struct fc_os_token_info ti;
    cr_assert_eq(fc_os_parse_token(token_body, strlen(token_body), "public", "RegionOne", &ti),
                 FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(ti.urls[FC_SVC_COMPUTE], "http://one:8774/v2.1");
    cr_assert_str_eq(ti.urls[FC_SVC_IMAGE], "http://one:9292/v2");
    cr_assert_str_eq(ti.urls[FC_SVC_NETWORK], "http://one:9696/v2.0");
    cr_assert_str_eq(ti.urls[FC_SVC_VOLUME], "http://bs:8776/v3/p1", "block-storage preferred");
    cr_assert_str_eq(ti.project_id, "p1");
    cr_assert_str_eq(ti.user_id, "u1");
    cr_assert_eq(ti.expires_at, 1893553445);
    fc_os_token_info_clear(&ti);

    cr_assert_eq(fc_os_parse_token(token_body, strlen(token_body), "publicURL", "RegionTwo", &ti),
                 FC_OK);
    cr_assert_str_eq(ti.urls[FC_SVC_COMPUTE], "http://two:8774/v2.1");
    cr_assert_null(ti.urls[FC_SVC_IMAGE], "no image endpoint in RegionTwo");
    fc_os_token_info_clear(&ti);

    cr_assert_eq(fc_os_parse_token(token_body, strlen(token_body), "admin", NULL, &ti), FC_OK);
    cr_assert_str_eq(ti.urls[FC_SVC_COMPUTE], "http://admin:8774/v2.1");
    fc_os_token_info_clear(&ti);
}

static void
token_bad(const char *body, const char *needle)
{
    struct fc_os_token_info ti;
    cr_assert_eq(fc_os_parse_token(body, strlen(body), NULL, NULL, &ti), FC_E_INVALID, "%s", body);
    cr_assert(strstr(fc_error_msg(), needle), "'%s' lacks '%s'", fc_error_msg(), needle);
}

Test(token, strict)
{
    token_bad("nope", "not JSON");
    token_bad("{}", "no 'token' object");
    token_bad("{\"token\":{\"expires_at\":\"tomorrow\",\"user\":{\"id\":\"u\"}}}", "expires_at");
    token_bad("{\"token\":{\"expires_at\":\"2030-01-02T03:04:05Z\",\"user\":{\"id\":\"u/../x\"}}}",
              "token.user.id");
    token_bad("{\"token\":{\"expires_at\":\"2030-01-02T03:04:05Z\",\"user\":{\"id\":\"u\"},"
              "\"catalog\":{}}}",
              "catalog is not an array");
    token_bad("{\"token\":{\"expires_at\":\"2030-01-02T03:04:05Z\",\"user\":{\"id\":\"u\"},"
              "\"catalog\":[{\"type\":\"compute\",\"endpoints\":[{\"interface\":\"public\","
              "\"url\":\"file:///etc/passwd\"}]}]}}",
              "url is not a URL");
    token_bad("{\"token\":{\"expires_at\":\"2030-01-02T03:04:05Z\",\"user\":{\"id\":\"u\"},"
              "\"catalog\":[{\"type\":\"compute\"}]}}",
              "lacks type or endpoints");
}

Test(token, time)
{
    cr_assert_eq(fc_os_parse_time("1970-01-01T00:00:00Z"), 0);
    cr_assert_eq(fc_os_parse_time("1970-01-01T01:00:00+01:00"), 0);
    cr_assert_eq(fc_os_parse_time("2030-01-02T03:04:05.123456Z"), 1893553445);
    cr_assert_eq(fc_os_parse_time("2030-13-02T03:04:05Z"), -1);
    cr_assert_eq(fc_os_parse_time("2030-01-02 03:04:05"), -1);
    cr_assert_eq(fc_os_parse_time("2030-01-02T03:04:05Zjunk"), -1);
    cr_assert_eq(fc_os_parse_time(NULL), -1);
}

static json_t *
load(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    cr_assert_not_null(j, "%s", je.text);
    return j;
}

Test(resources, server_at_2_79)
{
    json_t *raw = load(
        "{\"id\":\"s1\",\"name\":\"web-1\",\"status\":\"ACTIVE\",\"key_name\":\"k\","
        "\"flavor\":{\"original_name\":\"m1.small\",\"vcpus\":1,\"ram\":2048,\"disk\":20,"
        "\"ephemeral\":0,\"swap\":0,\"extra_specs\":{\"hw:cpu_policy\":\"shared\"}},"
        "\"image\":\"\",\"metadata\":{\"role\":\"web\"},\"tags\":[\"svc\"],"
        "\"OS-EXT-AZ:availability_zone\":\"nova\","
        "\"os-extended-volumes:volumes_attached\":[{\"id\":\"v1\",\"delete_on_termination\":false}],"
        "\"security_groups\":[{\"name\":\"web\"},{\"name\":\"db\"}],"
        "\"addresses\":{\"private\":[{\"addr\":\"10.0.0.5\",\"version\":4,"
        "\"OS-EXT-IPS:type\":\"fixed\",\"OS-EXT-IPS-MAC:mac_addr\":\"fa:16:3e:00:00:01\"}]},"
        "\"unknown_field\":{\"deep\":[1,2,3]}}");
    json_t *o = NULL;
    cr_assert_eq(fc_res_normalize(FC_RES_SERVER, raw, "servers[0]", &o), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(json_string_value(json_object_get(o, "name")), "web-1");
    cr_assert(json_is_null(json_object_get(o, "image_id")), "booted from a volume");
    json_t *fl = json_object_get(o, "flavor");
    cr_assert_eq(json_integer_value(json_object_get(fl, "ram_mb")), 2048);
    cr_assert_str_eq(json_string_value(json_object_get(fl, "name")), "m1.small");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(fl, "extra_specs"),
                                                       "hw:cpu_policy")), "shared");
    cr_assert_eq(json_array_size(json_object_get(o, "volumes_attached")), 1);
    cr_assert_eq(json_array_size(json_object_get(o, "security_group_names")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(
                         json_object_get(o, "addresses"), 0), "mac")), "fa:16:3e:00:00:01");
    cr_assert_null(json_object_get(o, "unknown_field"));
    json_decref(o);
    json_decref(raw);
}

static void
norm_bad(enum fc_res_kind k, const char *raw, const char *needle)
{
    json_t *r = load(raw), *o = NULL;
    cr_assert_eq(fc_res_normalize(k, r, "x[0]", &o), FC_E_INVALID, "%s", raw);
    cr_assert(strstr(fc_error_msg(), needle), "'%s' lacks '%s'", fc_error_msg(), needle);
    cr_assert_null(o);
    json_decref(r);
}

Test(resources, strict_fields)
{
    norm_bad(FC_RES_SERVER, "{\"name\":\"a\",\"flavor\":{}}", "x[0].id: missing");
    norm_bad(FC_RES_SERVER, "{\"id\":\"a b\",\"name\":\"a\",\"flavor\":{}}", "x[0].id: expected an identifier");
    norm_bad(FC_RES_SERVER, "{\"id\":\"a\",\"name\":\"a\",\"flavor\":{\"vcpus\":-1}}",
             "x[0].flavor.vcpus: expected an integer >= 0");
    norm_bad(FC_RES_SERVER, "{\"id\":\"a\",\"name\":\"a\",\"flavor\":{},\"metadata\":{\"k\":1}}",
             "x[0].metadata.k: expected a string");
    norm_bad(FC_RES_SERVER, "{\"id\":\"a\",\"name\":\"a\",\"flavor\":{},\"image\":7}", "x[0].image");
    norm_bad(FC_RES_PORT, "{\"id\":\"p\",\"network_id\":\"n\",\"mac_address\":\"m\","
                          "\"fixed_ips\":[{\"subnet_id\":\"s\"}]}",
             "x[0].fixed_ips[0].ip_address: missing");
    norm_bad(FC_RES_SECURITY_GROUP, "{\"id\":\"g\",\"name\":\"n\",\"security_group_rules\":"
                                    "[{\"id\":\"r\",\"direction\":\"in\",\"port_range_min\":\"22\"}]}",
             "x[0].security_group_rules[0].port_range_min");
    norm_bad(FC_RES_VOLUME, "{\"id\":\"v\",\"size\":1,\"bootable\":\"maybe\"}", "x[0].bootable");
    norm_bad(FC_RES_FLAVOR, "{\"id\":\"f\",\"name\":\"n\",\"vcpus\":1,\"ram\":1,\"disk\":1,\"swap\":[]}",
             "x[0].swap");
    norm_bad(FC_RES_IMAGE, "[]", "x[0]: expected an object");
}

Test(resources, lists_and_shapes)
{
    json_t *raw = load("[{\"keypair\":{\"name\":\"k\",\"public_key\":\"ssh-ed25519 AAAA\","
                       "\"type\":\"ssh\",\"fingerprint\":\"f\"}}]");
    json_t *o = NULL;
    cr_assert_eq(fc_res_normalize_list(FC_RES_KEYPAIR, raw, &o), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(o, 0), "public_key")),
                     "ssh-ed25519 AAAA");
    json_decref(o);
    json_decref(raw);

    raw = load("[{\"id\":\"v\",\"size\":2,\"bootable\":\"true\",\"volume_type\":\"__DEFAULT__\","
               "\"attachments\":[{\"server_id\":\"s\",\"device\":\"/dev/vdb\",\"attachment_id\":\"a\"}],"
               "\"volume_image_metadata\":{\"image_id\":\"i1\"}}]");
    cr_assert_eq(fc_res_normalize_list(FC_RES_VOLUME, raw, &o), FC_OK, "%s", fc_error_msg());
    json_t *v = json_array_get(o, 0);
    cr_assert(json_is_true(json_object_get(v, "bootable")));
    cr_assert_eq(json_integer_value(json_object_get(v, "size_gb")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(v, "image_id")), "i1");
    json_decref(o);
    json_decref(raw);

    raw = load("[{\"id\":\"r\",\"external_gateway_info\":{\"network_id\":\"ext\","
               "\"external_fixed_ips\":[{\"subnet_id\":\"s\",\"ip_address\":\"203.0.113.5\"}]}}]");
    cr_assert_eq(fc_res_normalize_list(FC_RES_ROUTER, raw, &o), FC_OK, "%s", fc_error_msg());
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(o, 0), "external_network_id")),
                     "ext");
    json_decref(o);
    json_decref(raw);

    raw = load("[{\"id\":\"f\",\"name\":\"m1.tiny\",\"vcpus\":1,\"ram\":512,\"disk\":1,\"swap\":\"\","
               "\"OS-FLV-EXT-DATA:ephemeral\":0,\"os-flavor-access:is_public\":true}]");
    cr_assert_eq(fc_res_normalize_list(FC_RES_FLAVOR, raw, &o), FC_OK, "%s", fc_error_msg());
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(o, 0), "swap_mb")), 0);
    json_decref(o);
    json_decref(raw);
}

Test(resources, url_escape)
{
    char out[32];
    cr_assert(fc_url_escape("a b&c=d/é", out, sizeof out));
    cr_assert_str_eq(out, "a%20b%26c%3Dd%2F%C3%A9");
    cr_assert(!fc_url_escape("0123456789012345678901234567890123", out, sizeof out));
}
