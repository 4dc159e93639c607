/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-image: converts VM disk images between raw, qcow2, vmdk and vpc, by hand (flags as
 * in qemu-img) or as a migrator under a broker (fluid-image.1 is the manual). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "fluid/error.h"

static const char usage[] =
    "usage: fluid-image info [--json] [-f FMT] FILE\n"
    "       fluid-image convert [-f FMT] -O FMT [-o key=value,...] [-c] [-p] [-m N]\n"
    "                           [--framed] [--tmpdir DIR] [--backing FILE] SRC DST\n"
    "       fluid-image formats\n"
    "SRC and DST may be - (stdin, stdout). Formats: raw, qcow2, vmdk, vpc; others are\n"
    "handed to qemu-img when it is installed.\n";

static fc_rc
cmd_info(int argc, char **argv, struct fc_migrator *m)
{
    static const struct option lo[] = {
        {"json", no_argument, NULL, 'j'},
        {"output", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    const char *fmt = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "+f:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'j':
            json = true;
            break;
        case 'u':
            if (strcmp(optarg, "json") == 0)
                json = true;
            else if (strcmp(optarg, "human") != 0)
                return FC_ERR(FC_E_INVALID, "--output=%s: json or human", optarg);
            break;
        case 'f':
            fmt = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return FC_OK;
        default:
            return FC_ERR(FC_E_INVALID, "info: bad option (see fluid-image --help)");
        }
    }
    if (optind != argc - 1)
        return FC_ERR(FC_E_INVALID, "info: expected one FILE (see fluid-image --help)");
    return img_info(argv[optind], fmt, json, m);
}

static fc_rc
cmd_convert(int argc, char **argv, struct fc_migrator *m)
{
    static const struct option lo[] = {
        {"framed", no_argument, NULL, 'F'},
        {"tmpdir", required_argument, NULL, 'D'},
        {"backing", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct img_convert_opts o = {.m = m};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "+f:O:o:cpm:t:T:S:WnqUh", lo, NULL)) != -1) {
        switch (ch) {
        case 'f':
            o.src_fmt = optarg;
            break;
        case 'O':
            o.dst_fmt = optarg;
            break;
        case 'o':
            o.options = optarg;
            break;
        case 'c':
            o.compress = true;
            break;
        case 'p':
            o.progress = true;
            break;
        case 'm': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 64)
                return FC_ERR(FC_E_INVALID, "-m %s: a thread count from 1 to 64", optarg);
            o.threads = (int)v;
            break;
        }
        case 'D':
            o.tmpdir = optarg;
            break;
        case 'B':
            o.backing = optarg;
            break;
        case 'F':
            o.framed_out = true;
            break;
        case 'W': /* qemu-img habits that need nothing here */
        case 'n':
        case 'q':
        case 'U':
        case 't': /* cache modes: fluid-image always uses the page cache */
        case 'T':
            break;
        case 'S': /* zero detection granularity: clusters here */
            break;
        case 'h':
            fputs(usage, stdout);
            return FC_OK;
        default:
            return FC_ERR(FC_E_INVALID, "convert: bad option (see fluid-image --help)");
        }
    }
    if (optind != argc - 2)
        return FC_ERR(FC_E_INVALID, "convert: expected SRC and DST (see fluid-image --help)");
    if (!o.dst_fmt)
        o.dst_fmt = o.framed_out ? "raw" : NULL;
    if (!o.dst_fmt)
        return FC_ERR(FC_E_INVALID, "convert: -O FMT is required (%s)", img_supported_list());
    o.src = argv[optind];
    o.dst = argv[optind + 1];
    return img_convert(&o);
}

int
main(int argc, char **argv)
{
    struct fc_migrator m;
    fc_rc rc = fc_migrator_init(&m, "fluid-image", &argc, argv);
    struct fc_migrator *mp = m.events_fd >= 0 ? &m : NULL;
    if (rc != FC_OK)
        return fc_migrator_finish(&m, rc);
    if (argc < 2) {
        fputs(usage, stderr);
        return fc_migrator_finish(&m, FC_ERR(FC_E_INVALID, "no command given"));
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "info") == 0) {
        rc = cmd_info(argc - 1, argv + 1, mp);
    } else if (strcmp(cmd, "convert") == 0) {
        rc = cmd_convert(argc - 1, argv + 1, mp);
    } else if (strcmp(cmd, "formats") == 0) {
        for (size_t i = 0; img_writers[i]; i++)
            printf("%s\n", img_writers[i]->name);
    } else if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, stdout);
    } else if (strcmp(cmd, "--version") == 0) {
        printf("fluid-image %s\n", FLUID_VERSION);
    } else {
        fputs(usage, stderr);
        rc = FC_ERR(FC_E_INVALID, "unknown command \"%s\"", cmd);
    }
    return fc_migrator_finish(&m, rc);
}
