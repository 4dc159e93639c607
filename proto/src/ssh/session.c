/* SPDX-License-Identifier: Apache-2.0 */
/* SSH sessions: TCP connect with a timeout, handshake, host key checked against a
 * known_hosts file (never accepted silently), public-key auth by key file or ssh-agent. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fluid/cleanup.h"
#include "fluid/error.h"
#include "fluid/log.h"
#include "ssh_priv.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void
do_init(void)
{
    init_rc = libssh2_init(0);
}

bool
fc_ssh_is_url(const char *s)
{
    return s && strncmp(s, "ssh://", 6) == 0;
}

fc_rc
fc_ssh_url_parse(const char *url, struct fc_ssh_url *out)
{
    memset(out, 0, sizeof *out);
    if (!fc_ssh_is_url(url))
        return FC_ERR(FC_E_INVALID, "ssh url: must start with ssh://");
    const char *p = url + 6;
    const char *slash = strchr(p, '/');
    if (!slash)
        return FC_ERR(FC_E_INVALID, "ssh url: no /path after the host");
    size_t alen = (size_t)(slash - p);
    char auth[400];
    if (alen == 0 || alen >= sizeof auth)
        return FC_ERR(FC_E_INVALID, "ssh url: empty or too long host part");
    memcpy(auth, p, alen);
    auth[alen] = 0;
    char *hp = auth;
    char *at = strrchr(auth, '@');
    if (at) {
        *at = 0;
        if (strchr(auth, ':'))
            return FC_ERR(FC_E_INVALID, "ssh url: a password in the URL is not accepted; use "
                                        "--identity or ssh-agent");
        if (!*auth || strlen(auth) >= sizeof out->user)
            return FC_ERR(FC_E_INVALID, "ssh url: bad user name");
        for (const char *c = auth; *c; c++)
            if (!(isalnum((unsigned char)*c) || strchr("._-", *c)))
                return FC_ERR(FC_E_INVALID, "ssh url: bad character in user name");
        strcpy(out->user, auth);
        hp = at + 1;
    }
    char *port = NULL;
    if (*hp == '[') {
        char *e = strchr(hp, ']');
        if (!e)
            return FC_ERR(FC_E_INVALID, "ssh url: unterminated [ in host");
        *e = 0;
        hp++;
        if (e[1] == ':')
            port = e + 2;
        else if (e[1])
            return FC_ERR(FC_E_INVALID, "ssh url: junk after ]");
    } else {
        char *c = strchr(hp, ':');
        if (c) {
            *c = 0;
            port = c + 1;
        }
    }
    if (!*hp || strlen(hp) >= sizeof out->host)
        return FC_ERR(FC_E_INVALID, "ssh url: empty host");
    for (const char *c = hp; *c; c++)
        if (!(isalnum((unsigned char)*c) || strchr(".-_:%", *c)))
            return FC_ERR(FC_E_INVALID, "ssh url: bad character in host");
    strcpy(out->host, hp);
    if (port) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(port, &end, 10);
        if (!*port || *end || errno || v == 0 || v > 65535)
            return FC_ERR(FC_E_INVALID, "ssh url: bad port \"%.16s\"", port);
        out->port = (unsigned)v;
    }
    if (strlen(slash) >= sizeof out->path)
        return FC_ERR(FC_E_INVALID, "ssh url: path too long");
    strcpy(out->path, slash);
    /* ssh://host/~/x and ssh://host//abs are not special: the path is used as given. */
    return FC_OK;
}

static ssize_t
cb_send(libssh2_socket_t fd, const void *buf, size_t len, int flags, void **abstract)
{
    struct fc_ssh *s = *abstract;
    ssize_t n = send(fd, buf, len, flags | MSG_NOSIGNAL);
    if (n < 0)
        return -errno;
    atomic_fetch_add(&s->sent, (uint64_t)n);
    return n;
}

static ssize_t
cb_recv(libssh2_socket_t fd, void *buf, size_t len, int flags, void **abstract)
{
    struct fc_ssh *s = *abstract;
    ssize_t n = recv(fd, buf, len, flags);
    if (n < 0)
        return -errno;
    atomic_fetch_add(&s->received, (uint64_t)n);
    return n;
}

static fc_rc
tcp_connect(struct fc_ssh *s, const char *host, unsigned port, unsigned timeout_s)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    char ps[16];
    snprintf(ps, sizeof ps, "%u", port);
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g != 0)
        return FC_ERR(FC_E_NET, "ssh %s: cannot resolve host: %s", s->peer, gai_strerror(g));
    int err = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
            err = errno;
            close(fd);
            continue;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int pr;
        do
            pr = poll(&pfd, 1, (int)timeout_s * 1000);
        while (pr < 0 && errno == EINTR);
        socklen_t sl = sizeof err;
        if (pr == 0)
            err = ETIMEDOUT;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
            err = errno;
        if (err) {
            close(fd);
            continue;
        }
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        s->fd = fd;
        freeaddrinfo(res);
        return FC_OK;
    }
    freeaddrinfo(res);
    errno = err;
    return FC_ERRNO(err == ETIMEDOUT ? FC_E_TIMEOUT : FC_E_NET, "ssh %s: connect", s->peer);
}

static void
fingerprint(struct fc_ssh *s)
{
    const unsigned char *h =
        (const unsigned char *)libssh2_hostkey_hash(s->sess, LIBSSH2_HOSTKEY_HASH_SHA256);
    if (!h) {
        snprintf(s->fingerprint, sizeof s->fingerprint, "SHA256:(unavailable)");
        return;
    }
    unsigned char b64[64];
    _Static_assert(sizeof ((struct fc_ssh *)0)->fingerprint >= 52, "fingerprint");
    int n = EVP_EncodeBlock(b64, h, 32);
    while (n > 0 && b64[n - 1] == '=')
        n--;
    b64[n] = 0;
    memcpy(s->fingerprint, "SHA256:", 7);
    memcpy(s->fingerprint + 7, b64, (size_t)n + 1);
}

static const char *
key_type_name(int t)
{
    switch (t) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return "ssh-rsa";
    case LIBSSH2_HOSTKEY_TYPE_DSS: return "ssh-dss";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return "ecdsa-sha2-nistp256";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return "ecdsa-sha2-nistp384";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return "ecdsa-sha2-nistp521";
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return "ssh-ed25519";
    default: return "unknown";
    }
}

static fc_rc
check_host_key(struct fc_ssh *s, const char *host, unsigned port, const char *kh_path)
{
    size_t klen = 0;
    int ktype = 0;
    const char *key = libssh2_session_hostkey(s->sess, &klen, &ktype);
    fingerprint(s);
    if (!key)
        return FC_ERR(FC_E_VERIFY, "ssh %s: the server sent no host key", s->peer);
    LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(s->sess);
    if (!kh)
        return FC_ERR(FC_E_NOMEM, "ssh %s: out of memory", s->peer);
    fc_rc rc = FC_OK;
    int n = libssh2_knownhost_readfile(kh, kh_path, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
    if (n < 0) {
        rc = FC_ERR(FC_E_VERIFY,
                    "ssh %s: cannot read known_hosts file %s, so the host key %s %s is not "
                    "accepted (add the host's key to that file)",
                    s->peer, kh_path, key_type_name(ktype), s->fingerprint);
        goto out;
    }
    struct libssh2_knownhost *found = NULL;
    /* Key type bits 0: any entry of the host whose key equals the server's matches; an
     * entry of the host with another key makes a mismatch. */
    int c = libssh2_knownhost_checkp(kh, host, (int)port, key, klen,
                                     LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW,
                                     &found);
    switch (c) {
    case LIBSSH2_KNOWNHOST_CHECK_MATCH:
        break;
    case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
        rc = FC_ERR(FC_E_VERIFY,
                    "ssh %s: HOST KEY CHANGED: the server's %s key is %s, which is not the key "
                    "%s lists for this host; refusing to connect (possible man-in-the-middle)",
                    s->peer, key_type_name(ktype), s->fingerprint, kh_path);
        break;
    case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
        rc = FC_ERR(FC_E_VERIFY,
                    "ssh %s: unknown host key: %s %s is not in %s; refusing to connect "
                    "(verify the fingerprint and add the key to that file)",
                    s->peer, key_type_name(ktype), s->fingerprint, kh_path);
        break;
    default:
        rc = FC_ERR(FC_E_VERIFY, "ssh %s: host key check failed for %s %s against %s",
                    s->peer, key_type_name(ktype), s->fingerprint, kh_path);
    }
out:
    libssh2_knownhost_free(kh);
    return rc;
}

static fc_rc
auth_agent(struct fc_ssh *s, const char *user)
{
    if (!getenv("SSH_AUTH_SOCK"))
        return FC_ERR(FC_E_AUTH,
                      "ssh %s: no --identity key file given and no ssh-agent (SSH_AUTH_SOCK "
                      "is not set)", s->peer);
    LIBSSH2_AGENT *ag = libssh2_agent_init(s->sess);
    if (!ag)
        return FC_ERR(FC_E_NOMEM, "ssh %s: out of memory", s->peer);
    fc_rc rc;
    if (libssh2_agent_connect(ag) != 0) {
        rc = FC_ERR(FC_E_AUTH, "ssh %s: cannot connect to ssh-agent", s->peer);
        goto out;
    }
    if (libssh2_agent_list_identities(ag) != 0) {
        rc = FC_ERR(FC_E_AUTH, "ssh %s: cannot list ssh-agent keys", s->peer);
        goto out;
    }
    struct libssh2_agent_publickey *id = NULL, *prev = NULL;
    int tried = 0;
    rc = FC_ERR(FC_E_AUTH, "ssh %s: ssh-agent holds no key", s->peer);
    while (libssh2_agent_get_identity(ag, &id, prev) == 0) {
        tried++;
        if (libssh2_agent_userauth(ag, user, id) == 0) {
            rc = FC_OK;
            break;
        }
        prev = id;
    }
    if (rc != FC_OK && tried)
        rc = FC_ERR(FC_E_AUTH, "ssh %s: user %s: the server refused all %d ssh-agent keys",
                    s->peer, user, tried);
    libssh2_agent_disconnect(ag);
out:
    libssh2_agent_free(ag);
    return rc;
}

static fc_rc
authenticate(struct fc_ssh *s, const char *user, const char *identity)
{
    char *methods = libssh2_userauth_list(s->sess, user, (unsigned)strlen(user));
    if (!methods) {
        if (libssh2_userauth_authenticated(s->sess))
            return FC_OK;
        return fc_ssh_error(s, 0, "user %s: listing auth methods", user);
    }
    if (!strstr(methods, "publickey"))
        return FC_ERR(FC_E_AUTH, "ssh %s: user %s: the server does not offer public-key "
                                 "authentication (offers: %s)", s->peer, user, methods);
    if (!identity)
        return auth_agent(s, user);
    if (access(identity, R_OK) != 0)
        return FC_ERRNO(FC_E_AUTH, "ssh %s: identity file %s", s->peer, identity);
    int r = libssh2_userauth_publickey_fromfile(s->sess, user, NULL, identity, NULL);
    if (r == 0)
        return FC_OK;
    if (r == LIBSSH2_ERROR_FILE)
        return FC_ERR(FC_E_AUTH, "ssh %s: cannot use identity file %s (not a private key, or "
                                 "protected by a passphrase: use ssh-agent for those)",
                      s->peer, identity);
    return FC_ERR(FC_E_AUTH, "ssh %s: user %s: the server refused the key in %s", s->peer,
                  user, identity);
}

fc_rc
fc_ssh_connect(const struct fc_ssh_opts *o, struct fc_ssh **out)
{
    *out = NULL;
    if (!o->host || !*o->host)
        return FC_ERR(FC_E_INVALID, "ssh: no host given");
    pthread_once(&init_once, do_init);
    if (init_rc != 0)
        return FC_ERR(FC_E_INTERNAL, "ssh: libssh2_init failed (%d)", init_rc);
    unsigned port = o->port ? o->port : 22;
    unsigned cto = o->connect_timeout_s ? o->connect_timeout_s : 20;
    unsigned ito = o->io_timeout_s ? o->io_timeout_s : 120;

    char user[256];
    if (o->user && *o->user) {
        snprintf(user, sizeof user, "%s", o->user);
    } else {
        struct passwd pw, *pr = NULL;
        char pbuf[4096];
        if (getpwuid_r(geteuid(), &pw, pbuf, sizeof pbuf, &pr) != 0 || !pr)
            return FC_ERR(FC_E_INVALID, "ssh: no user given and the current user has no name");
        snprintf(user, sizeof user, "%s", pw.pw_name);
    }
    char khbuf[4096];
    const char *kh = o->known_hosts;
    if (!kh) {
        const char *home = getenv("HOME");
        if (!home)
            return FC_ERR(FC_E_VERIFY, "ssh: no known_hosts file given and HOME is not set");
        snprintf(khbuf, sizeof khbuf, "%s/.ssh/known_hosts", home);
        kh = khbuf;
    }

    struct fc_ssh *s = calloc(1, sizeof *s);
    if (!s)
        return FC_ERR(FC_E_NOMEM, "ssh: out of memory");
    s->fd = -1;
    if (strchr(o->host, ':'))
        snprintf(s->peer, sizeof s->peer, "[%s]:%u", o->host, port);
    else
        snprintf(s->peer, sizeof s->peer, "%s:%u", o->host, port);
    fc_rc rc = tcp_connect(s, o->host, port, cto);
    if (rc != FC_OK)
        goto fail;
    s->sess = libssh2_session_init_ex(NULL, NULL, NULL, s);
    if (!s->sess) {
        rc = FC_ERR(FC_E_NOMEM, "ssh %s: cannot create a session", s->peer);
        goto fail;
    }
    libssh2_session_callback_set(s->sess, LIBSSH2_CALLBACK_SEND, (void *)cb_send);
    libssh2_session_callback_set(s->sess, LIBSSH2_CALLBACK_RECV, (void *)cb_recv);
    libssh2_session_set_blocking(s->sess, 1);
    libssh2_session_set_timeout(s->sess, (long)cto * 1000);
    /* Fast ciphers first (libssh2 1.10 has no GCM/chacha20). */
    libssh2_session_method_pref(s->sess, LIBSSH2_METHOD_CRYPT_CS,
                                "aes128-ctr,aes256-ctr,aes192-ctr");
    libssh2_session_method_pref(s->sess, LIBSSH2_METHOD_CRYPT_SC,
                                "aes128-ctr,aes256-ctr,aes192-ctr");
    int r = libssh2_session_handshake(s->sess, s->fd);
    if (r != 0) {
        rc = fc_ssh_error(s, r, "handshake");
        goto fail;
    }
    if ((rc = check_host_key(s, o->host, port, kh)) != FC_OK)
        goto fail;
    if ((rc = authenticate(s, user, o->identity)) != FC_OK)
        goto fail;
    libssh2_session_set_timeout(s->sess, (long)ito * 1000);
    s->io_timeout_ms = (int)ito * 1000;
    /* No libssh2 keepalives: in libssh2 1.10 their interval also caps every blocking wait
     * (a 30 s interval makes any 30 s wait fail). TCP keepalive is on. */
    fc_log(FC_DEBUG, FC_MSG("ssh connected"), FC_STR("peer", s->peer), FC_STR("user", user),
           FC_STR("host_key", s->fingerprint));
    *out = s;
    return FC_OK;
fail:
    fc_ssh_free(s);
    return rc;
}

void
fc_ssh_free(struct fc_ssh *s)
{
    if (!s)
        return;
    if (s->sftp)
        libssh2_sftp_shutdown(s->sftp);
    if (s->sess) {
        if (!atomic_load(&s->aborted)) {
            libssh2_session_set_timeout(s->sess, 2000);
            libssh2_session_disconnect(s->sess, "bye");
        }
        libssh2_session_free(s->sess);
    }
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

const char *
fc_ssh_peer(const struct fc_ssh *s)
{
    return s->peer;
}

const char *
fc_ssh_fingerprint(const struct fc_ssh *s)
{
    return s->fingerprint;
}

void
fc_ssh_socket_bytes(const struct fc_ssh *s, uint64_t *sent, uint64_t *received)
{
    if (sent)
        *sent = atomic_load(&((struct fc_ssh *)s)->sent);
    if (received)
        *received = atomic_load(&((struct fc_ssh *)s)->received);
}

void
fc_ssh_abort(struct fc_ssh *s)
{
    if (!s)
        return;
    atomic_store(&s->aborted, true);
    if (s->fd >= 0)
        shutdown(s->fd, SHUT_RDWR);
}

bool
fc_ssh_safe_word(const char *w)
{
    if (!w || !*w || *w == '-')
        return false;
    for (const char *c = w; *c; c++)
        if (!(isalnum((unsigned char)*c) || strchr("/._+-", *c)))
            return false;
    return true;
}
