/* Reply formatting into a growable buffer; see mc_reply.h. */
#include "mc_reply.h"
#include "mc_num.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Appends up to three pieces with one reservation, so a reply is either whole or absent. */
static int put3(struct app_outbuf *b, const char *a, size_t na, const char *c, size_t nc,
                const char *d, size_t nd)
{
    char *p = app_outbuf_reserve(b, na + nc + nd);
    if (!p)
        return app_outbuf_overflow(b);
    memcpy(p, a, na);
    if (nc)
        memcpy(p + na, c, nc);
    if (nd)
        memcpy(p + na + nc, d, nd);
    app_outbuf_commit(b, na + nc + nd);
    return 0;
}

size_t mc_fmt_value_hdr(char *dst, const char *key, size_t nkey, uint32_t flags, size_t nbytes,
                        bool with_cas, uint64_t cas)
{
    char *p = dst;
    memcpy(p, "VALUE ", 6);
    p += 6;
    memcpy(p, key, nkey);
    p += nkey;
    *p++ = ' ';
    p += app_u64_dec(flags, p);
    *p++ = ' ';
    p += app_u64_dec(nbytes, p);
    if (with_cas) {
        *p++ = ' ';
        p += app_u64_dec(cas, p);
    }
    *p++ = '\r';
    *p++ = '\n';
    return (size_t)(p - dst);
}

int mc_reply_line(struct app_outbuf *b, const char *text)
{
    return put3(b, text, strlen(text), "\r\n", 2, "", 0);
}

int mc_reply_error(struct app_outbuf *b, enum mc_err err)
{
    return mc_reply_line(b, mc_err_str(err));
}

int mc_reply_result(struct app_outbuf *b, enum mc_result r)
{
    return mc_reply_line(b, mc_result_str(r));
}

int mc_reply_number(struct app_outbuf *b, uint64_t v)
{
    char digits[MC_U64_DIGITS];
    return put3(b, digits, app_u64_dec(v, digits), "\r\n", 2, "", 0);
}

int mc_reply_value(struct app_outbuf *b, const char *key, size_t nkey, uint32_t flags,
                   const char *data, size_t nbytes, bool with_cas, uint64_t cas)
{
    if (nkey > MC_KEY_MAX)
        return -EINVAL;
    char hdr[MC_VALUE_HDR_MAX];
    size_t n = mc_fmt_value_hdr(hdr, key, nkey, flags, nbytes, with_cas, cas);
    return put3(b, hdr, n, data, nbytes, "\r\n", 2);
}

int mc_reply_item(struct app_outbuf *b, const struct mc_item *it, bool with_cas)
{
    char hdr[MC_VALUE_HDR_MAX];
    size_t n = mc_fmt_value_hdr(hdr, mc_item_key(it), it->nkey, it->flags, it->nbytes, with_cas,
                                it->cas);
    return put3(b, hdr, n, mc_item_value(it), (size_t)it->nbytes + 2, "", 0);
}

int mc_reply_end(struct app_outbuf *b)
{
    return app_outbuf_put(b, "END\r\n", 5);
}

int mc_reply_version(struct app_outbuf *b, const char *version)
{
    return put3(b, "VERSION ", 8, version, strlen(version), "\r\n", 2);
}

int mc_reply_stat(struct app_outbuf *b, const char *name, const char *fmt, ...)
{
    char val[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(val, sizeof val, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    size_t nv = (size_t)n < sizeof val ? (size_t)n : sizeof val - 1;
    size_t nn = strlen(name);
    char *p = app_outbuf_reserve(b, 5 + nn + 1 + nv + 2);
    if (!p)
        return app_outbuf_overflow(b);
    memcpy(p, "STAT ", 5);
    memcpy(p + 5, name, nn);
    p[5 + nn] = ' ';
    memcpy(p + 5 + nn + 1, val, nv);
    memcpy(p + 5 + nn + 1 + nv, "\r\n", 2);
    app_outbuf_commit(b, 5 + nn + 1 + nv + 2);
    return 0;
}

int mc_reply_stat_u64(struct app_outbuf *b, const char *name, uint64_t v)
{
    return mc_reply_stat(b, name, "%llu", (unsigned long long)v);
}

#define STAT_FIELD(f)                                                                              \
    {                                                                                              \
#f, offsetof(struct mc_store_stats, f)                                                     \
    }

static const struct stat_field {
    const char *name;
    size_t off;
} cmds_fields[] = {
    STAT_FIELD(cmd_get),         STAT_FIELD(cmd_set),       STAT_FIELD(cmd_flush),
    STAT_FIELD(cmd_touch),       STAT_FIELD(get_hits),      STAT_FIELD(get_misses),
    STAT_FIELD(get_expired),     STAT_FIELD(get_flushed),   STAT_FIELD(delete_misses),
    STAT_FIELD(delete_hits),     STAT_FIELD(incr_misses),   STAT_FIELD(incr_hits),
    STAT_FIELD(decr_misses),     STAT_FIELD(decr_hits),     STAT_FIELD(cas_misses),
    STAT_FIELD(cas_hits),        STAT_FIELD(cas_badval),    STAT_FIELD(touch_hits),
    STAT_FIELD(touch_misses),    STAT_FIELD(store_too_large), STAT_FIELD(store_no_memory),
}, hash_fields[] = {
    STAT_FIELD(hash_power_level), STAT_FIELD(hash_bytes), STAT_FIELD(hash_is_expanding),
}, items_fields[] = {
    STAT_FIELD(bytes),             STAT_FIELD(curr_items), STAT_FIELD(total_items),
    STAT_FIELD(expired_unfetched), STAT_FIELD(evicted_unfetched), STAT_FIELD(evictions),
    STAT_FIELD(reclaimed),
};

static int put_fields(struct app_outbuf *b, const struct mc_store_stats *st,
                      const struct stat_field *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        memcpy(&v, (const char *)st + f[i].off, sizeof v);
        int rc = mc_reply_stat_u64(b, f[i].name, v);
        if (rc)
            return rc;
    }
    return 0;
}

#define FIELDS(a) a, sizeof a / sizeof a[0]

int mc_reply_store_stats(struct app_outbuf *b, const struct mc_store_stats *st,
                         enum mc_stats_group group)
{
    switch (group) {
    case MC_STATS_CMDS: return put_fields(b, st, FIELDS(cmds_fields));
    case MC_STATS_HASH: return put_fields(b, st, FIELDS(hash_fields));
    case MC_STATS_ITEMS: return put_fields(b, st, FIELDS(items_fields));
    }
    return -EINVAL;
}
