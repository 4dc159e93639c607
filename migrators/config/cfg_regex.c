/* SPDX-License-Identifier: Apache-2.0 */
/* fluid-config regex and require rules: PCRE2 over the whole file (so a pattern may span
 * lines), bounded by a match limit, a heap limit and a number of matches per rule. */
#include <string.h>

#include "cfg.h"
#include "fluid/error.h"
#include "fluid/log.h"

static fc_rc
match_error(const struct cfg_rule *rule, const struct cfg_limits *lim, const char *path, int rc,
            size_t off)
{
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT)
        return FC_ERR(FC_E_INVALID,
                      "%s: match limit of %llu steps exceeded at offset %zu (catastrophic "
                      "backtracking?): simplify the pattern or raise limits.match_limit",
                      rule->id, (unsigned long long)lim->match_limit, off);
    if (rc == PCRE2_ERROR_HEAPLIMIT)
        return FC_ERR(FC_E_INVALID,
                      "%s: heap limit of %llu KiB exceeded at offset %zu: simplify the "
                      "pattern or raise limits.heap_limit_kib",
                      rule->id, (unsigned long long)lim->heap_limit_kib, off);
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    return FC_ERR(FC_E_INVALID, "%s: matching at offset %zu: %s", rule->id, off, (const char *)msg);
}

static fc_rc
add_template(const struct cfg_rule *rule, const char *in, const PCRE2_SIZE *ov, int nmatched,
             struct cfg_buf *out)
{
    fc_rc rc = FC_OK;
    for (size_t i = 0; i < rule->ntpl && rc == FC_OK; i++) {
        const struct cfg_tpl_part *p = &rule->tpl[i];
        if (p->lit) {
            rc = cfg_buf_add(out, p->lit, p->len);
        } else if ((int)p->group < nmatched && ov[2 * p->group] != PCRE2_UNSET) {
            rc = cfg_buf_add(out, in + ov[2 * p->group], ov[2 * p->group + 1] - ov[2 * p->group]);
        }
    }
    return rc;
}

/* Length of the character at in[off]: a CRLF pair, a UTF-8 sequence or one byte. */
static size_t
char_len(const char *in, size_t len, size_t off)
{
    if (in[off] == '\r' && off + 1 < len && in[off + 1] == '\n')
        return 2;
    size_t n = 1;
    if ((unsigned char)in[off] >= 0xc0)
        while (off + n < len && n < 4 && ((unsigned char)in[off + n] & 0xc0) == 0x80)
            n++;
    return n;
}

fc_rc
cfg_regex_apply(const struct cfg_rule *rule, const struct cfg_limits *lim, const char *path,
                const char *in, size_t len, struct cfg_buf *out)
{
    bool utf = cfg_utf8_valid(in, len);
    const pcre2_code *re = utf ? rule->re : rule->re_bytes;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    if (!md || !mc) {
        pcre2_match_data_free(md);
        pcre2_match_context_free(mc);
        return FC_ERR(FC_E_NOMEM, "out of memory");
    }
    uint64_t ml = lim->match_limit > UINT32_MAX ? UINT32_MAX : lim->match_limit;
    uint64_t hl = lim->heap_limit_kib > UINT32_MAX ? UINT32_MAX : lim->heap_limit_kib;
    pcre2_set_match_limit(mc, (uint32_t)ml);
    pcre2_set_depth_limit(mc, (uint32_t)ml);
    pcre2_set_heap_limit(mc, (uint32_t)hl);

    fc_rc rc = FC_OK;
    size_t off = 0, copied = 0;
    uint64_t n = 0;
    uint32_t flags = 0;
    bool found = false;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    while (off <= len) {
        int m = pcre2_match(re, (PCRE2_SPTR)in, len, off, flags | (utf ? PCRE2_NO_UTF_CHECK : 0),
                            md, mc);
        if (m == PCRE2_ERROR_NOMATCH) {
            if (!flags)
                break;
            /* no non-empty match here after an empty one: step over one character */
            flags = 0;
            if (off >= len)
                break;
            off += char_len(in, len, off);
            continue;
        }
        if (m < 0) {
            rc = match_error(rule, lim, path, m, off);
            break;
        }
        found = true;
        if (rule->type == CFG_REQUIRE)
            break;
        if (++n > lim->max_matches) {
            rc = FC_ERR(FC_E_INVALID,
                        "%s: more than %llu matches: raise "
                        "limits.max_matches or narrow the pattern",
                        rule->id, (unsigned long long)lim->max_matches);
            break;
        }
        size_t s = ov[0], e = ov[1];
        if (s < copied) /* \K can move the start before the previous end */
            s = copied;
        if ((rc = cfg_buf_add(out, in + copied, s - copied)) != FC_OK ||
            (rc = add_template(rule, in, ov, m, out)) != FC_OK)
            break;
        copied = e > copied ? e : copied;
        if (rule->count && n == rule->count)
            break;
        off = e;
        flags = (e == ov[0]) ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
    }
    pcre2_match_data_free(md);
    pcre2_match_context_free(mc);
    if (rc != FC_OK)
        return rc;
    fc_log(FC_DEBUG, FC_MSG("regex rule applied"), FC_STR("rule", rule->id), FC_STR("path", path),
           FC_U64("matches", rule->type == CFG_REQUIRE ? (uint64_t)found : n),
           FC_STR("mode", utf ? "utf-8" : "bytes"));
    if (rule->type == CFG_REQUIRE) {
        if (!found)
            return FC_ERR(FC_E_INVALID, "%s: required pattern not found", rule->id);
        return cfg_buf_add(out, in, len);
    }
    return cfg_buf_add(out, in + copied, len - copied);
}
