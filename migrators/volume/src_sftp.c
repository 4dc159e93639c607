/* SPDX-License-Identifier: Apache-2.0 */
/* An ssh:// source: the remote file is read over SFTP (sequential 4 MiB reads keep libssh2's
 * read-ahead busy) and fed to the chunker, zero blocks as zero runs. The source SHA-256 is
 * computed here over the bytes received. */
#include <stdlib.h>
#include <sys/stat.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "volume.h"

#define RD (4u << 20)

fc_rc
src_sftp_run(struct job *j, struct fc_sink *sink)
{
    struct fc_ssh_opts o;
    struct fc_ssh *ssh = NULL;
    struct fc_sftp_file *f = NULL;
    FC_AUTOFREE uint8_t *buf = malloc(RD);
    if (!buf)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    job_ssh_opts(j, &j->src.url, &o);
    fc_rc rc = fc_ssh_connect(&o, &ssh);
    if (rc != FC_OK)
        return rc;
    struct fc_sftp_stat st;
    if ((rc = fc_sftp_open(ssh, j->src.url.path, FC_SFTP_READ, 0, &f)) != FC_OK ||
        (rc = fc_sftp_fstat(f, &st)) != FC_OK)
        goto out;
    if (!S_ISREG(st.mode)) {
        rc = FC_ERR(FC_E_UNSUPPORTED, "source %s:%s: only regular files can be read over SFTP",
                    fc_ssh_peer(ssh), j->src.url.path);
        goto out;
    }
    struct fc_stream_info info = {.size = st.size};
    if ((rc = sink->begin(sink, &info)) != FC_OK)
        goto out;
    uint64_t pos = 0;
    while (pos < st.size) {
        if (fc_cancel_requested) {
            rc = FC_ERR(FC_E_CANCELLED, "cancelled at offset %llu", (unsigned long long)pos);
            goto out;
        }
        size_t want = st.size - pos < RD ? (size_t)(st.size - pos) : RD, got;
        if ((rc = fc_sftp_read(f, buf, want, &got)) != FC_OK)
            goto out;
        if (got < want) {
            rc = FC_ERR(FC_E_IO, "source %s:%s shrank to %llu bytes while being read",
                        fc_ssh_peer(ssh), j->src.url.path, (unsigned long long)(pos + got));
            goto out;
        }
        for (size_t b = 0; b < got;) {
            size_t bl = got - b < VOL_BLOCK ? got - b : VOL_BLOCK;
            bool z = fc_is_zero(buf + b, bl);
            size_t e = b + bl;
            while (e < got) {
                size_t el = got - e < VOL_BLOCK ? got - e : VOL_BLOCK;
                if (fc_is_zero(buf + e, el) != z)
                    break;
                e += el;
            }
            rc = z ? sink->zero(sink, pos + b, e - b) : sink->write(sink, pos + b, buf + b, e - b);
            if (rc != FC_OK)
                goto out;
            b = e;
        }
        pos += got;
        uint64_t rcv;
        fc_ssh_socket_bytes(ssh, NULL, &rcv);
        atomic_store(&j->wire_bytes, rcv);
    }
    rc = sink->end(sink, st.size, NULL);
out:
    fc_sftp_discard(f);
    fc_ssh_free(ssh);
    return rc;
}
