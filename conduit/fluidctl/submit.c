/* SPDX-License-Identifier: Apache-2.0 */
/* fluidctl submit FILE: validate a RelocationRequest locally, publish it to fluid.requests
 * with a publisher confirm, print its relocation id. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "ctl.h"
#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/stream.h"

/* Reads at most FC_MSG_MAX_BYTES + 1 bytes ("-" = stdin). */
static fc_rc
read_file(const char *path, char **buf, size_t *len)
{
    FC_AUTOCLOSE int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return FC_ERRNO(errno == ENOENT ? FC_E_NOTFOUND : FC_E_IO, "%s", path);
    size_t cap = FC_MSG_MAX_BYTES + 2;
    char *b = malloc(cap);
    if (!b)
        return FC_ERR(FC_E_NOMEM, "out of memory");
    size_t got = 0;
    fc_rc rc = fc_read_full(fd, b, cap - 1, &got);
    if (rc != FC_OK) {
        free(b);
        fc_error_prefix("%s", path);
        return rc;
    }
    b[got] = '\0';
    *buf = b;
    *len = got;
    return FC_OK;
}

int
fc_ctl_submit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"check", no_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    bool check_only = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "nh", opts, NULL)) != -1) {
        switch (ch) {
        case 'n': check_only = true; break;
        case 'h':
            printf("usage: fluidctl submit [--check] FILE|-\n"
                   "Validates the RelocationRequest in FILE, publishes it to fluid.requests and\n"
                   "prints its relocation id. --check: validate only.\n");
            return FC_CTL_OK;
        default: return FC_CTL_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: fluidctl submit [--check] FILE|-\n");
        return FC_CTL_USAGE;
    }
    const char *path = argv[optind];
    FC_AUTOFREE char *buf = NULL;
    size_t len = 0;
    fc_rc rc = read_file(path, &buf, &len);
    if (rc != FC_OK)
        return fc_ctl_fail("submit", rc);
    FC_AUTO(request) struct fc_request *r = NULL;
    if ((rc = fc_request_parse(buf, len, &r)) != FC_OK) {
        fprintf(stderr, "fluidctl submit: %s: %s\n", path, fc_error_msg());
        return fc_ctl_exit_for(rc);
    }
    if (check_only) {
        printf("%s\n", r->relocation_id);
        return FC_CTL_OK;
    }
    struct fc_amqp *a = NULL;
    if ((rc = fc_ctl_connect(&a)) != FC_OK)
        return fc_ctl_fail("submit", rc);
    struct fc_amqp_msg m = {.exchange = "", .routing_key = FC_AMQP_Q_REQUESTS, .body = buf,
                            .len = len, .message_id = r->idempotency_key, .mandatory = true};
    rc = fc_amqp_publish(a, &m);
    fc_amqp_close(a);
    if (rc != FC_OK)
        return fc_ctl_fail("submit", rc);
    printf("%s\n", r->relocation_id);
    return FC_CTL_OK;
}
