/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-volume: copies a block volume (file, device, stream) to another place, over SSH
 * (SFTP, or its own helper `fluid-volume serve` when the far side has it), sparse-aware,
 * verified end to end, resumable, with delta re-sync. fluid-volume.1 is the manual. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/log.h"
#include "volume.h"

static const char usage[] =
    "usage: fluid-volume copy [options] SRC DEST\n"
    "       fluid-volume serve            (the helper; started over SSH by copy)\n"
    "SRC, DEST: a file or block device, - (stdin/stdout), or ssh://[user@]host[:port]/path\n"
    "  --identity FILE       private key (default: ssh-agent)\n"
    "  --known-hosts FILE    default ~/.ssh/known_hosts; unknown keys are refused\n"
    "  --compress zstd[:N]   compress chunks (helper mode)\n"
    "  --no-sparse           write zero runs as zeros\n"
    "  --verify / --no-verify  compare the SHA-256 chunk-tree digests of source and\n"
    "                          destination (default on)\n"
    "  --resume              continue an interrupted copy\n"
    "  --delta               send only the chunks that differ on the destination\n"
    "  --rehash              with --delta: read the destination's chunks even when the\n"
    "                        hash record of its last verified copy still holds\n"
    "  --no-hash-record      leave no DEST.fluid-hashes beside a verified file copy\n"
    "  --streams N           parallel SSH connections (1-16, default 1)\n"
    "  --remote-helper PATH  absolute path of fluid-volume on the destination, or none\n"
    "  --framed              write the framed stream when DEST is -\n"
    "  --timeout S           SSH connect / stalled transfer timeout (default 20 / 120)\n"
    "  -p, --progress        progress on the terminal\n";

static fc_rc
parse_end(const char *arg, struct vol_end *e, const char *what)
{
    e->arg = arg;
    if (!strcmp(arg, "-")) {
        e->kind = VK_STREAM;
        return FC_OK;
    }
    if (fc_ssh_is_url(arg)) {
        e->kind = VK_SSH;
        fc_rc rc = fc_ssh_url_parse(arg, &e->url);
        if (rc != FC_OK)
            fc_error_prefix("%s", what);
        return rc;
    }
    if (!*arg)
        return FC_ERR(FC_E_INVALID, "%s: empty path", what);
    e->kind = VK_LOCAL;
    return FC_OK;
}

static fc_rc
parse_compress(const char *v, int *level)
{
    if (!strcmp(v, "none") || !strcmp(v, "off")) {
        *level = 0;
        return FC_OK;
    }
    if (strncmp(v, "zstd", 4) != 0 || (v[4] && v[4] != ':'))
        return FC_ERR(FC_E_INVALID, "--compress: \"%s\": only zstd[:level] is supported", v);
    *level = 3;
    if (v[4] == ':') {
        char *end;
        long l = strtol(v + 5, &end, 10);
        if (!v[5] || *end || l < 1 || l > 19)
            return FC_ERR(FC_E_INVALID, "--compress: zstd level must be 1..19");
        *level = (int)l;
    }
    return FC_OK;
}

static fc_rc
run_copy(struct fc_migrator *m, int argc, char **argv)
{
    struct job j = {.m = m, .sparse = true, .verify = true, .streams = 1};
    static const struct option lo[] = {
        {"identity", required_argument, 0, 'i'},  {"known-hosts", required_argument, 0, 'k'},
        {"compress", required_argument, 0, 'z'},  {"no-sparse", no_argument, 0, 'S'},
        {"verify", no_argument, 0, 'v'},          {"no-verify", no_argument, 0, 'V'},
        {"resume", no_argument, 0, 'r'},          {"delta", no_argument, 0, 'd'},
        {"streams", required_argument, 0, 'n'},   {"remote-helper", required_argument, 0, 'H'},
        {"framed", no_argument, 0, 'f'},          {"progress", no_argument, 0, 'p'},
        {"timeout", required_argument, 0, 't'},   {"help", no_argument, 0, 'h'},
        {"rehash", no_argument, 0, 'R'},          {"no-hash-record", no_argument, 0, 'N'},
        {0, 0, 0, 0}};
    int c;
    fc_rc rc;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+ph", lo, NULL)) != -1) {
        switch (c) {
        case 'i': j.identity = optarg; break;
        case 'k': j.known_hosts = optarg; break;
        case 'z':
            if ((rc = parse_compress(optarg, &j.zlevel)) != FC_OK)
                return rc;
            break;
        case 'S': j.sparse = false; break;
        case 'v': j.verify = true; break;
        case 'V': j.verify = false; break;
        case 'r': j.resume = true; break;
        case 'd': j.delta = true; break;
        case 'R': j.rehash = true; break;
        case 'N': j.no_record = true; break;
        case 'n': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > VOL_MAX_STREAMS)
                return FC_ERR(FC_E_INVALID, "--streams: must be 1..%d", VOL_MAX_STREAMS);
            j.streams = (unsigned)n;
            break;
        }
        case 'H': j.remote_helper = optarg; break;
        case 't': {
            char *end;
            long t = strtol(optarg, &end, 10);
            if (*end || t < 1 || t > 86400)
                return FC_ERR(FC_E_INVALID, "--timeout: seconds, 1..86400");
            j.timeout_s = (unsigned)t;
            break;
        }
        case 'f': j.framed = true; break;
        case 'p': j.progress = true; break;
        case 'h': fputs(usage, stdout); return FC_OK;
        default: return FC_ERR(FC_E_INVALID, "copy: bad option (see fluid-volume --help)");
        }
    }
    if (argc - optind != 2)
        return FC_ERR(FC_E_INVALID, "copy: expected SRC and DEST, got %d arguments",
                      argc - optind);
    if ((rc = parse_end(argv[optind], &j.src, "SRC")) != FC_OK ||
        (rc = parse_end(argv[optind + 1], &j.dst, "DEST")) != FC_OK)
        return rc;
    if (j.src.kind == VK_SSH && j.dst.kind == VK_SSH)
        return FC_ERR(FC_E_UNSUPPORTED, "copy: SRC and DEST cannot both be ssh:// (run "
                                        "fluid-volume on one of the two hosts)");
    if (j.remote_helper && strcmp(j.remote_helper, "none") != 0 &&
        (j.remote_helper[0] != '/' || !fc_ssh_safe_word(j.remote_helper)))
        return FC_ERR(FC_E_INVALID,
                      "--remote-helper: \"%s\" must be an absolute path of only letters, "
                      "digits and / . _ + - (it is run through the remote shell)",
                      j.remote_helper);
    if (j.dst.kind == VK_STREAM && (j.delta || j.resume))
        return FC_ERR(FC_E_INVALID, "--delta and --resume need a destination file or device");
    if (j.src.kind == VK_LOCAL) { /* a bad source fails before anything is connected */
        int fd = -1;
        if ((rc = vol_open_source(&j, &fd)) != FC_OK)
            return rc;
        close(fd);
    }
    /* AES-CTR with its keystream made in bulk (fluid_ssh ctr.c): a third of the sender's
     * CPU on a dense copy. FLUID_SSH_BULK_CTR=0 keeps OpenSSL's own (for comparison). */
    const char *bulk = getenv("FLUID_SSH_BULK_CTR");
    if ((j.src.kind == VK_SSH || j.dst.kind == VK_SSH) && !(bulk && !strcmp(bulk, "0")) &&
        (rc = fc_ssh_bulk_ctr()) != FC_OK) {
        fc_logf(FC_WARN, "%s; using OpenSSL's AES-CTR as it is", fc_error_msg());
        fc_error_clear();
    }
    prehash_start(&j); /* --delta/--resume: hash the source while connecting */
    if (j.dst.kind == VK_LOCAL) {
        j.mode = MODE_LOCAL;
        j.ops = &dest_local_ops;
    } else if (j.dst.kind == VK_STREAM) {
        j.mode = MODE_STREAM;
        j.ops = &dest_stream_ops;
        j.streams = 1;
    } else {
        bool helper = false;
        if ((rc = dest_helper_probe(&j, &helper)) != FC_OK) {
            prehash_end(&j);
            return rc;
        }
        j.mode = helper ? MODE_HELPER : MODE_SFTP;
        j.ops = helper ? &dest_helper_ops : &dest_sftp_ops;
        if (!helper && j.zlevel)
            fc_event_info(m, json_pack("{s:s,s:s}", "mode", "sftp", "note",
                                       "--compress needs the helper: sending uncompressed"));
    }
    if (j.src.kind == VK_SSH && j.dst.kind != VK_SSH)
        j.streams = 1;
    rc = vol_copy(&j);
    prehash_end(&j);
    free(j.base_hash);
    fc_ssh_chan_close(j.chan0, NULL);
    fc_ssh_free(j.ssh0);
    return rc;
}

int
main(int argc, char **argv)
{
    struct fc_migrator m;
    fc_rc rc = fc_migrator_init(&m, "fluid-volume", &argc, argv);
    if (rc == FC_OK) {
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
            fputs(usage, argc < 2 ? stderr : stdout);
            rc = argc < 2 ? FC_ERR(FC_E_INVALID, "no command given") : FC_OK;
        } else if (!strcmp(argv[1], "copy")) {
            rc = run_copy(&m, argc - 1, argv + 1);
        } else if (!strcmp(argv[1], "serve")) {
            rc = vol_serve();
        } else {
            rc = FC_ERR(FC_E_INVALID, "unknown command \"%s\" (copy or serve)", argv[1]);
        }
    }
    return fc_migrator_finish(&m, rc);
}
