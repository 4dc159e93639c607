/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-image info: what a reader finds in an image's headers, as text or JSON (keys as
 * qemu-img's), or qemu-img's answer for formats fluid-image does not read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convert.h"
#include "fluid/error.h"

static void
human(uint64_t v, char *buf, size_t n)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double d = (double)v;
    int i = 0;
    while (d >= 1024 && i < 6)
        d /= 1024, i++;
    if (i == 0)
        snprintf(buf, n, "%llu B", (unsigned long long)v);
    else
        snprintf(buf, n, "%.3g %s", d, u[i]);
}

fc_rc
img_info(const char *path, const char *fmt, bool json, struct fc_migrator *m)
{
    struct img_in *in = calloc(1, sizeof *in);
    if (!in)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    fc_rc rc = img_in_open(in, path);
    const struct img_reader *rd = NULL;
    const char *foreign = NULL;
    if (rc == FC_OK && fmt && !(rd = img_find_reader(fmt)))
        foreign = fmt;
    if (rc == FC_OK && !fmt && !(foreign = img_foreign_probe(in->head, in->head_len))) {
        rd = img_probe(in);
    }
    if (rc == FC_OK && foreign) {
        img_in_close(in);
        free(in);
        char why[256];
        snprintf(why, sizeof why, "%s is a %s image, which fluid-image does not read", path,
                 foreign);
        const char *a[] = {"info", json ? "--output=json" : "--output=human", "-f", foreign,
                           path};
        if (strcmp(path, "-") == 0)
            return FC_ERR(FC_E_UNSUPPORTED, "%s (qemu-img needs a file)", why);
        return img_run_qemu_img(a, 5, why);
    }
    if (rc == FC_OK && in->head_len >= 8 && memcmp(in->head, FC_STREAM_MAGIC, 8) == 0)
        rc = FC_ERR(FC_E_UNSUPPORTED, "%s is a framed stream, not an image file", in->name);
    if (rc == FC_OK && rd->random_access && rd->random_access(in) && !in->seekable)
        rc = img_in_spool(in, getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    void *rst = NULL;
    if (rc == FC_OK && !(rst = calloc(1, rd->state_size)))
        rc = FC_ERR(FC_E_NOMEM, "out of memory");
    struct img_info info = {0};
    if (rc == FC_OK && (rc = rd->open(rst, in)) == FC_OK)
        rd->info(rst, &info);
    if (rst) {
        rd->close(rst);
        free(rst);
    }
    struct stat st;
    uint64_t actual = in->fd >= 0 && fstat(in->fd, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
    img_in_close(in);
    free(in);
    if (rc != FC_OK)
        return rc;
    json_t *o = json_pack("{s:s,s:s}", "filename", path, "format", info.format);
    if (info.vsize != FC_SIZE_UNKNOWN)
        json_object_set_new(o, "virtual-size", json_integer((json_int_t)info.vsize));
    json_object_set_new(o, "actual-size", json_integer((json_int_t)actual));
    if (info.cluster)
        json_object_set_new(o, "cluster-size", json_integer((json_int_t)info.cluster));
    if (info.subformat[0])
        json_object_set_new(o, "subformat", json_string(info.subformat));
    if (info.compression)
        json_object_set_new(o, "compression", json_string(info.compression));
    if (info.backing[0])
        json_object_set_new(o, "backing-filename", json_string(info.backing));
    if (json) {
        char *s = json_dumps(o, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
        if (s)
            printf("%s\n", s);
        free(s);
    } else {
        char v[32], a[32];
        human(info.vsize, v, sizeof v);
        human(actual, a, sizeof a);
        printf("image: %s\nfile format: %s\n", path, info.format);
        if (info.vsize != FC_SIZE_UNKNOWN)
            printf("virtual size: %s (%llu bytes)\n", v, (unsigned long long)info.vsize);
        printf("disk size: %s\n", a);
        if (info.cluster)
            printf("cluster_size: %llu\n", (unsigned long long)info.cluster);
        if (info.subformat[0])
            printf("subformat: %s\n", info.subformat);
        if (info.compression)
            printf("compression: %s\n", info.compression);
        if (info.backing[0])
            printf("backing file: %s\n", info.backing);
    }
    fflush(stdout);
    if (m)
        fc_event_done(m, o);
    else
        json_decref(o);
    return FC_OK;
}
