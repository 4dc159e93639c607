/* SPDX-License-Identifier: Apache-2.0 */
/* The SSH host keys of a newly launched server, as the server printed them on its console
 * (the "-----BEGIN SSH HOST KEY KEYS-----" block of cloud-init, which fluid-guest prints
 * too), read through Nova as the server's owner: an authenticated path that does not depend
 * on the network the SSH connection takes, so a relocated server's key is never accepted
 * blindly. The console is untrusted text: only well-formed key lines are kept. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fluid/error.h"
#include "fluid/log.h"
#include "fluid/migrator.h"
#include "fluid/stream.h"
#include "hostkeys.h"

#define BEGIN_KEYS "-----BEGIN SSH HOST KEY KEYS-----"
#define END_KEYS "-----END SSH HOST KEY KEYS-----"

static bool
known_type(const char *t, size_t n)
{
    static const char *const types[] = {"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256",
                                        "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (strlen(types[i]) == n && memcmp(types[i], t, n) == 0)
            return true;
    return false;
}

size_t
osa_parse_console_keys(const char *console, const char *host, char *out, size_t cap)
{
    /* the last complete block wins: a server that rebooted printed it again */
    const char *b = NULL, *p = console;
    while ((p = strstr(p, BEGIN_KEYS)) != NULL) {
        if (strstr(p, END_KEYS))
            b = p;
        p += sizeof BEGIN_KEYS - 1;
    }
    if (!b || cap == 0)
        return 0;
    b += sizeof BEGIN_KEYS - 1;
    const char *e = strstr(b, END_KEYS);
    size_t n = 0, keys = 0;
    out[0] = '\0';
    while (b < e) {
        const char *nl = memchr(b, '\n', (size_t)(e - b));
        const char *end = nl ? nl : e;
        /* "TYPE BASE64 [comment]", possibly with a console prefix or a \r */
        const char *t = b;
        while (t < end && isspace((unsigned char)*t))
            t++;
        const char *sp = memchr(t, ' ', (size_t)(end - t));
        if (sp && known_type(t, (size_t)(sp - t))) {
            const char *k = sp + 1, *ke = k;
            while (ke < end && (isalnum((unsigned char)*ke) || *ke == '+' || *ke == '/' ||
                                *ke == '='))
                ke++;
            bool ok = ke - k >= 60 && ke - k <= 4096 &&
                      (ke == end || isspace((unsigned char)*ke));
            if (ok) {
                int w = snprintf(out + n, cap - n, "%s %.*s %.*s\n", host, (int)(sp - t), t,
                                 (int)(ke - k), k);
                if (w < 0 || (size_t)w >= cap - n)
                    break;
                n += (size_t)w;
                keys++;
            }
        }
        b = end + 1;
    }
    return keys;
}

fc_rc
osa_console_known_hosts(struct osa *a, const char *server_id, const char *host, int *fd_out)
{
    *fd_out = -1;
    char path[300];
    snprintf(path, sizeof path, "/servers/%s/action", server_id);
    json_t *body = json_pack("{s:{s:i}}", "os-getConsoleOutput", "length", 2000);
    char known[16384];
    size_t keys = 0;
    unsigned waited = 0, limit = a->timeout_s ? a->timeout_s : 600;
    fc_rc rc = FC_OK;
    for (;;) {
        json_t *reply = NULL;
        rc = fc_os_call(a->os, FC_SVC_COMPUTE, "POST", path, body, NULL, &reply);
        if (rc != FC_OK && rc != FC_E_CONFLICT) /* 409: the console is not there yet */
            break;
        const char *out = json_string_value(json_object_get(reply, "output"));
        keys = out ? osa_parse_console_keys(out, host, known, sizeof known) : 0;
        json_decref(reply);
        rc = FC_OK;
        if (keys)
            break;
        if (waited >= limit) {
            rc = FC_ERR(FC_E_TIMEOUT, "%s: server %s printed no SSH host keys on its console "
                        "in %u s (cloud-init's \"%s\" block); give options.config_ssh."
                        "known_hosts instead", a->action, server_id, limit, BEGIN_KEYS);
            break;
        }
        if (waited % 30 == 0)
            fc_log(FC_INFO, FC_MSG("waiting for the server's host keys on its console"),
                   FC_STR("server", server_id), FC_U64("waited_s", waited));
        sleep(2);
        waited += 2;
        if (fc_cancel_requested) {
            rc = FC_ERR(FC_E_CANCELLED, "%s: cancelled while waiting for host keys", a->action);
            break;
        }
    }
    json_decref(body);
    if (rc != FC_OK)
        return rc;
    int fd = memfd_create("fluid-known-hosts", MFD_CLOEXEC);
    if (fd < 0 || fc_write_all(fd, known, strlen(known)) != FC_OK) {
        if (fd >= 0)
            close(fd);
        return FC_ERRNO(FC_E_IO, "%s: cannot hold the host keys", a->action);
    }
    fc_log(FC_INFO, FC_MSG("host keys taken from the server's console"),
           FC_STR("server", server_id), FC_U64("keys", keys));
    *fd_out = fd;
    return FC_OK;
}
