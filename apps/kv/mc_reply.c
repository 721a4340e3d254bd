/* Reply formatting into a growable buffer; see mc_reply.h. */
#include "mc_reply.h"
#include "mc_num.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MC_BUF_MIN 1024

void mc_buf_init(struct mc_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void mc_buf_free(struct mc_buf *b)
{
    free(b->data);
    mc_buf_init(b);
}

int mc_buf_reserve(struct mc_buf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    size_t cap = b->cap ? b->cap : MC_BUF_MIN;
    while (cap - b->len < extra)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int mc_buf_append(struct mc_buf *b, const void *p, size_t n)
{
    int rc = mc_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Appends up to three pieces at once, so a reply is either whole or absent. */
static int put3(struct mc_buf *b, const char *a, size_t na, const char *c, size_t nc,
                const char *d, size_t nd)
{
    int rc = mc_buf_reserve(b, na + nc + nd);
    if (rc)
        return rc;
    char *p = b->data + b->len;
    if (na)
        memcpy(p, a, na);
    if (nc)
        memcpy(p + na, c, nc);
    if (nd)
        memcpy(p + na + nc, d, nd);
    b->len += na + nc + nd;
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

int mc_reply_line(struct mc_buf *b, const char *text)
{
    return put3(b, text, strlen(text), "\r\n", 2, "", 0);
}

int mc_reply_error(struct mc_buf *b, enum mc_err err)
{
    return mc_reply_line(b, mc_err_str(err));
}

int mc_reply_result(struct mc_buf *b, enum mc_result r)
{
    return mc_reply_line(b, mc_result_str(r));
}

int mc_reply_number(struct mc_buf *b, uint64_t v)
{
    char digits[MC_U64_DIGITS];
    return put3(b, digits, app_u64_dec(v, digits), "\r\n", 2, "", 0);
}

int mc_reply_value(struct mc_buf *b, const char *key, size_t nkey, uint32_t flags,
                   const char *data, size_t nbytes, bool with_cas, uint64_t cas)
{
    if (nkey > MC_KEY_MAX)
        return -EINVAL;
    char hdr[MC_VALUE_HDR_MAX];
    size_t n = mc_fmt_value_hdr(hdr, key, nkey, flags, nbytes, with_cas, cas);
    return put3(b, hdr, n, data, nbytes, "\r\n", 2);
}

int mc_reply_item(struct mc_buf *b, const struct mc_item *it, bool with_cas)
{
    char hdr[MC_VALUE_HDR_MAX];
    size_t n = mc_fmt_value_hdr(hdr, mc_item_key(it), it->nkey, it->flags, it->nbytes, with_cas,
                                it->cas);
    return put3(b, hdr, n, mc_item_value(it), (size_t)it->nbytes + 2, "", 0);
}

int mc_reply_end(struct mc_buf *b)
{
    return mc_buf_append(b, "END\r\n", 5);
}

int mc_reply_version(struct mc_buf *b, const char *version)
{
    return put3(b, "VERSION ", 8, version, strlen(version), "\r\n", 2);
}

int mc_reply_stat(struct mc_buf *b, const char *name, const char *fmt, ...)
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
    int rc = mc_buf_reserve(b, 5 + nn + 1 + nv + 2);
    if (rc)
        return rc;
    put3(b, "STAT ", 5, name, nn, " ", 1);
    return put3(b, val, nv, "\r\n", 2, "", 0);
}

int mc_reply_stat_u64(struct mc_buf *b, const char *name, uint64_t v)
{
    return mc_reply_stat(b, name, "%llu", (unsigned long long)v);
}

#define STAT_FIELD(f) {#f, offsetof(struct mc_store_stats, f)}

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

static int put_fields(struct mc_buf *b, const struct mc_store_stats *st,
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

int mc_reply_store_stats(struct mc_buf *b, const struct mc_store_stats *st,
                         enum mc_stats_group group)
{
    switch (group) {
    case MC_STATS_CMDS: return put_fields(b, st, FIELDS(cmds_fields));
    case MC_STATS_HASH: return put_fields(b, st, FIELDS(hash_fields));
    case MC_STATS_ITEMS: return put_fields(b, st, FIELDS(items_fields));
    }
    return -EINVAL;
}
