/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config unified diffs (what --dry-run prints): Myers' O(ND) line diff after trimming
 * the common head and tail, 3 lines of context, "\ No newline at end of file" markers, so
 * that `patch -p1` (and `git apply`) apply the output. */
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "fluid/error.h"

#define CONTEXT 3
#define MAX_D 1500 /* beyond this many changed lines, the middle is replaced as one block */

struct ln {
    const char *p;
    size_t n; /* with its '\n', if any */
};

static size_t
split(const char *s, size_t len, struct ln **out)
{
    size_t cnt = 0;
    for (size_t i = 0; i < len; i++)
        cnt += s[i] == '\n';
    cnt += len > 0 && s[len - 1] != '\n';
    struct ln *l = calloc(cnt ? cnt : 1, sizeof *l);
    if (!l)
        return (size_t)-1;
    size_t k = 0, p = 0;
    while (p < len) {
        const char *nl = memchr(s + p, '\n', len - p);
        size_t e = nl ? (size_t)(nl - s) + 1 : len;
        l[k++] = (struct ln){s + p, e - p};
        p = e;
    }
    *out = l;
    return cnt;
}

static bool
eq(const struct ln *a, const struct ln *b)
{
    return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
}

enum { OP_EQ, OP_DEL, OP_INS };

/* Myers over a[0..n) and b[0..m): appends ops (in order) to ops. */
static fc_rc
myers(const struct ln *a, size_t n, const struct ln *b, size_t m, char *ops, size_t *nops)
{
    long max = (long)(n + m);
    long dmax = max < MAX_D ? max : MAX_D;
    long *v = calloc((size_t)(2 * max + 3), sizeof *v);
    long **trace = calloc((size_t)dmax + 1, sizeof *trace);
    fc_rc rc = FC_OK;
    long D = -1;
    if (!v || !trace) {
        rc = FC_ERR(FC_E_NOMEM, "diff: out of memory");
        goto out;
    }
    long off = max + 1;
    for (long d = 0; d <= dmax && D < 0; d++) {
        for (long k = -d; k <= d; k += 2) {
            long x = (k == -d || (k != d && v[off + k - 1] < v[off + k + 1])) ? v[off + k + 1]
                                                                              : v[off + k - 1] + 1;
            long y = x - k;
            while (x < (long)n && y < (long)m && eq(&a[x], &b[y]))
                x++, y++;
            v[off + k] = x;
            if (x >= (long)n && y >= (long)m) {
                D = d;
                break;
            }
        }
        trace[d] = malloc((size_t)(2 * d + 1) * sizeof **trace);
        if (!trace[d]) {
            rc = FC_ERR(FC_E_NOMEM, "diff: out of memory");
            goto out;
        }
        memcpy(trace[d], v + off - d, (size_t)(2 * d + 1) * sizeof *v);
    }
    if (D < 0) { /* too different: delete all, insert all */
        memset(ops, OP_DEL, n);
        memset(ops + n, OP_INS, m);
        *nops = n + m;
        goto out;
    }
    /* backtrack from (n, m), writing ops backwards */
    size_t w = n + m + (size_t)0;
    size_t total = 0;
    char *rev = ops + n + m; /* ops has room for 2 * (n + m) */
    long x = (long)n, y = (long)m;
    for (long d = D; d > 0; d--) {
        const long *pv = trace[d - 1]; /* indexes k + (d - 1) */
        long k = x - y;
        long pk = (k == -d || (k != d && pv[k - 1 + d - 1] < pv[k + 1 + d - 1])) ? k + 1 : k - 1;
        long px = pv[pk + d - 1], py = px - pk;
        while (x > px && y > py) {
            rev[total++] = OP_EQ;
            x--, y--;
        }
        rev[total++] = pk == k + 1 ? OP_INS : OP_DEL;
        x = px, y = py;
    }
    while (x > 0 && y > 0) {
        rev[total++] = OP_EQ;
        x--, y--;
    }
    (void)w;
    for (size_t i = 0; i < total; i++)
        ops[i] = rev[total - 1 - i];
    *nops = total;
out:
    for (long d = 0; trace && d <= dmax; d++)
        free(trace[d]);
    free(trace);
    free(v);
    return rc;
}

static fc_rc
add_line(struct cfg_buf *out, char mark, const struct ln *l)
{
    fc_rc rc = cfg_buf_add(out, &mark, 1) ?: cfg_buf_add(out, l->p, l->n);
    if (rc == FC_OK && (l->n == 0 || l->p[l->n - 1] != '\n'))
        rc = cfg_buf_adds(out, "\n\\ No newline at end of file\n");
    return rc;
}

fc_rc
cfg_diff(const char *label, const char *old, size_t oldlen, const char *new_, size_t newlen,
         struct cfg_buf *out)
{
    if (oldlen == newlen && memcmp(old, new_, oldlen) == 0)
        return FC_OK;
    struct ln *a = NULL, *b = NULL;
    size_t n = split(old, oldlen, &a), m = split(new_, newlen, &b);
    char *ops = NULL;
    fc_rc rc = FC_OK;
    if (n == (size_t)-1 || m == (size_t)-1 || !(ops = malloc(2 * (n + m) + 2))) {
        rc = FC_ERR(FC_E_NOMEM, "diff: out of memory");
        goto out;
    }
    size_t pre = 0, suf = 0;
    while (pre < n && pre < m && eq(&a[pre], &b[pre]))
        pre++;
    while (suf < n - pre && suf < m - pre && eq(&a[n - 1 - suf], &b[m - 1 - suf]))
        suf++;
    memset(ops, OP_EQ, pre);
    size_t nmid = 0;
    if ((rc = myers(a + pre, n - pre - suf, b + pre, m - pre - suf, ops + pre, &nmid)) != FC_OK)
        goto out;
    memset(ops + pre + nmid, OP_EQ, suf);
    size_t nops = pre + nmid + suf;

    const char *lab = label[0] == '/' ? label + 1 : label;
    if ((rc = cfg_buf_addf(out, "--- a/%s\n+++ b/%s\n", lab, lab)) != FC_OK)
        goto out;
    /* positions in a and b of each op */
    size_t i = 0, ai = 0, bi = 0;
    while (i < nops) {
        if (ops[i] == OP_EQ) {
            i++, ai++, bi++;
            continue;
        }
        /* a hunk: back up CONTEXT lines, extend while changes are within 2*CONTEXT */
        size_t back = 0;
        while (back < CONTEXT && back < i && ops[i - 1 - back] == OP_EQ)
            back++;
        size_t hs = i - back, as = ai - back, bs = bi - back, he = i, eqrun = 0;
        for (size_t j = i; j < nops; j++) {
            if (ops[j] == OP_EQ) {
                if (++eqrun > 2 * CONTEXT)
                    break;
            } else {
                eqrun = 0;
                he = j + 1;
            }
        }
        size_t after = 0;
        while (after < CONTEXT && he + after < nops && ops[he + after] == OP_EQ)
            after++;
        he += after;
        size_t ac = 0, bc = 0;
        for (size_t j = hs; j < he; j++) {
            ac += ops[j] != OP_INS;
            bc += ops[j] != OP_DEL;
        }
        rc = cfg_buf_addf(out, "@@ -%zu,%zu +%zu,%zu @@\n", ac ? as + 1 : as, ac, bc ? bs + 1 : bs,
                          bc);
        size_t x = as, y = bs;
        for (size_t j = hs; j < he && rc == FC_OK; j++) {
            if (ops[j] == OP_EQ)
                rc = add_line(out, ' ', &a[x++]), y++;
            else if (ops[j] == OP_DEL)
                rc = add_line(out, '-', &a[x++]);
            else
                rc = add_line(out, '+', &b[y++]);
        }
        if (rc != FC_OK)
            goto out;
        i = he, ai = x, bi = y;
    }
out:
    free(ops);
    free(a);
    free(b);
    return rc;
}
