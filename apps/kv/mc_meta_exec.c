/*
 * Meta commands against a per-core store and their answers, in memcached 1.6.18's words and
 * order; see mc_meta.h. Each answer line is built in a local fixed app_outbuf and appended
 * whole, so a failed append leaves nothing half-written.
 */
#include "mc_meta.h"
#include "mc_base64.h"
#include "mc_num.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Longest answer line: code and size, 17 flags of at most 22 bytes, a base64 key, W X Z. */
#define LINE_MAX 1024

/* An answer line: a fixed app_outbuf (apps/common/outbuf.h) over its own bytes. */
struct line {
    struct app_outbuf o;
    char b[LINE_MAX];
};

static void put(struct line *l, const char *p, size_t n)
{
    app_outbuf_put(&l->o, p, n);
}

static void put_str(struct line *l, const char *s)
{
    app_outbuf_str(&l->o, s);
}

static void put_flag(struct line *l, char flag)
{
    char tmp[2] = {' ', flag};
    put(l, tmp, 2);
}

/* " <flag><number>" */
static void put_num(struct line *l, char flag, uint64_t v)
{
    put_flag(l, flag);
    app_outbuf_u64(&l->o, v);
}

/* The base64 form of a binary key. */
static void put_base64(struct line *l, const char *key, size_t nkey)
{
    char *p = app_outbuf_reserve(&l->o, mc_base64_encoded_len(nkey));
    if (p)
        app_outbuf_commit(&l->o, mc_base64_encode((const unsigned char *)key, nkey, p));
}

/* " k<key>", or " k<base64 key> b" for a binary key. */
static void put_key(struct line *l, const char *key, size_t nkey, bool binary)
{
    put_flag(l, 'k');
    if (!binary) {
        put(l, key, nkey);
        return;
    }
    put_base64(l, key, nkey);
    put(l, " b", 2);
}

static void put_opaque(struct line *l, const struct mc_meta *m)
{
    put(l, " ", 1);
    put(l, m->opaque, m->opaque_len);
}

static bool has(const struct mc_cmd *c, char flag)
{
    return mc_meta_has(&c->meta, flag);
}

/* The whole line, then `n` value bytes (they include their "\r\n"), or nothing. */
static int emit(struct app_outbuf *out, struct line *l, const char *value, size_t n)
{
    put(l, "\r\n", 2);
    if (l->o.err) /* LINE_MAX is the longest line there can be: never, but said */
        return l->o.err;
    if (!app_outbuf_reserve(out, l->o.len + n))
        return app_outbuf_overflow(out);
    app_outbuf_put(out, l->b, l->o.len);
    return app_outbuf_put(out, value, n);
}

static int error_line(struct app_outbuf *out, const char *text)
{
    return mc_reply_line(out, text);
}

/* The O and k flags of an answer without an item (misses, EX, NF): memcached's loop. */
static int tokens_only(const struct mc_cmd *c, struct app_outbuf *out, struct line *l)
{
    for (unsigned i = 0; i < c->meta.nflags; i++) {
        char f = c->meta.order[i];
        if (f == 'O' && c->meta.opaque_long)
            return error_line(out, mc_err_str(MC_ERR_OPAQUE));
        if (f == 'O')
            put_opaque(l, &c->meta);
        else if (f == 'k')
            put_key(l, c->key.p, c->key.len, has(c, 'b'));
    }
    return emit(out, l, NULL, 0);
}

static void start_line(struct line *l, const char *code)
{
    app_outbuf_init_fixed(&l->o, l->b, sizeof l->b);
    put_str(l, code);
}

/* "VA <size>" when the value follows, else "HD". */
static void start_hit(struct line *l, bool value, size_t size)
{
    start_line(l, value ? "VA " : "HD");
    if (value)
        app_outbuf_u64(&l->o, size);
}

/* ---- mg ---- */

struct mg_state {
    struct mc_item *it;
    bool created; /* by N, just now */
    bool won;     /* this client gets W */
    bool touched; /* T changed the exptime (counted as a touch) */
    int64_t now;
};

/* " t<seconds left>" (-1: none) as memcached prints it from its 32-bit clock. */
static void put_ttl(struct line *l, const struct mc_item *it, int64_t now)
{
    put_flag(l, 't');
    if (it->exptime == 0)
        put(l, "-1", 2);
    else
        app_outbuf_u64(&l->o, (uint32_t)(it->exptime - now));
}

/* One flag of an mg hit at its turn: an answer token or a change. False: opaque too long. */
static bool mg_flag(const struct mc_cmd *c, struct mg_state *st, struct line *l, char f)
{
    struct mc_item *it = st->it;
    const struct mc_meta *m = &c->meta;
    switch (f) {
    case 'T': st->touched = true, mc_store_set_exptime(it, m->ttl, st->now); break;
    case 'N':
        if (st->created)
            mc_store_set_exptime(it, m->vivify_ttl, st->now), st->won = true;
        break;
    case 'R':
        st->won |= !(it->iflags & MC_ITEM_TOKEN_SENT) && !st->created && it->exptime != 0 &&
                   it->exptime < mc_store_abs_time_at(m->recache_ttl, st->now);
        break;
    case 's': put_num(l, 's', it->nbytes); break;
    case 't': put_ttl(l, it, st->now); break;
    case 'c': put_num(l, 'c', it->cas); break;
    case 'f': put_num(l, 'f', it->flags); break;
    case 'l': put_num(l, 'l', (uint32_t)(st->now - it->time)); break;
    case 'h': put_num(l, 'h', (it->iflags & MC_ITEM_FETCHED) != 0); break;
    case 'O':
        if (m->opaque_long)
            return false;
        put_opaque(l, m);
        break;
    case 'k': put_key(l, mc_item_key(it), it->nkey, it->iflags & MC_ITEM_KEY_BINARY); break;
    }
    return true;
}

/* Z, X and W after the requested flags, in memcached's order. */
static void mg_win_flags(struct mg_state *st, struct line *l)
{
    uint8_t fl = st->it->iflags;
    if (fl & MC_ITEM_TOKEN_SENT)
        put_flag(l, 'Z');
    if (fl & MC_ITEM_STALE) {
        put_flag(l, 'X');
        st->won |= !(fl & MC_ITEM_TOKEN_SENT);
    }
    if (st->won) {
        put_flag(l, 'W');
        mc_store_mark_won(st->it);
    }
}

/*
 * memcached fetches with the item locked (and bumps it only once the answer is built, not at
 * all if it fails) when a flag reads or changes the item's state: h, l, N, R, T. Otherwise it
 * bumps at once, so even an mg that then fails on a long opaque counts as a fetch.
 */
static bool mg_bumps_late(const struct mc_cmd *c)
{
    return has(c, 'h') || has(c, 'l') || has(c, 'N') || has(c, 'R') || has(c, 'T');
}

static int mg_hit(struct mc_store *s, const struct mc_cmd *c, struct mg_state *st,
                  struct app_outbuf *out)
{
    struct line l;
    struct mc_item *it = st->it;
    bool value = has(c, 'v');
    bool bump = !has(c, 'u'), late = mg_bumps_late(c);
    if (bump && !late)
        mc_store_bump(s, it);
    start_hit(&l, value, it->nbytes);
    for (unsigned i = 0; i < c->meta.nflags; i++) {
        if (!mg_flag(c, st, &l, c->meta.order[i]))
            return error_line(out, mc_err_str(MC_ERR_OPAQUE));
    }
    mg_win_flags(st, &l);
    int rc = emit(out, &l, value ? mc_item_value(it) : NULL, value ? it->nbytes + 2u : 0);
    if (bump && late)
        mc_store_bump(s, it);
    mc_store_count_mg(s, true, st->touched);
    return rc;
}

static int exec_mg(struct mc_store *s, const struct mc_cmd *c, struct app_outbuf *out)
{
    struct mg_state st = {.now = mc_store_now(s)};
    st.it = mc_store_find(s, c->key.p, c->key.len);
    if (!st.it && has(c, 'N')) {
        st.it = mc_store_vivify(s, c->key.p, c->key.len, c->meta.new_cas);
        st.created = st.it != NULL;
    }
    if (st.it)
        return mg_hit(s, c, &st, out);
    mc_store_count_mg(s, false, has(c, 'T'));
    if (has(c, 'q') && !c->meta.opaque_long)
        return 0;
    struct line l;
    start_line(&l, "EN");
    return tokens_only(c, out, &l);
}

/* ---- ms ---- */

static enum mc_set_mode ms_mode(const struct mc_cmd *c)
{
    bool cas = has(c, 'C');
    switch (c->meta.mode) {
    case 'E': return MC_ADD;
    case 'A': return MC_APPEND;
    case 'P': return MC_PREPEND;
    case 'R': return cas ? MC_CAS : MC_REPLACE;
    default: return cas ? MC_CAS : MC_SET;
    }
}

static const char *result_code(enum mc_result r)
{
    switch (r) {
    case MC_STORED:
    case MC_DELETED:
    case MC_DELTA_OK: return "HD";
    case MC_NOT_STORED: return "NS";
    case MC_EXISTS: return "EX";
    case MC_NOT_FOUND: return "NF";
    default: return NULL;
    }
}

static int exec_ms(struct mc_store *s, const struct mc_cmd *c, struct app_outbuf *out)
{
    const struct mc_meta *m = &c->meta;
    enum mc_set_mode mode = ms_mode(c);
    struct mc_set_req req = {
        .key = c->key.p,
        .nkey = c->key.len,
        .data = c->data.p,
        .nbytes = c->data.len,
        .flags = has(c, 'F') ? m->client_flags : 0,
        .exptime = has(c, 'T') ? m->ttl : 0,
        .cas = mode == MC_ADD ? 0 : m->cas,
        .invalidate = mode == MC_CAS && has(c, 'I'),
        .key_binary = has(c, 'b'),
        .new_cas = m->new_cas,
    };
    uint64_t cas = 0;
    enum mc_result r = mc_store_set(s, mode, &req, &cas);
    const char *code = result_code(r);
    if (!code)
        return error_line(out, mc_result_str(r));
    if (r == MC_STORED && has(c, 'q'))
        return 0;
    struct line l;
    start_line(&l, code);
    for (unsigned i = 0; i < m->nflags; i++) {
        char f = m->order[i];
        if (f == 'O')
            put_opaque(&l, m);
        else if (f == 'k')
            put_key(&l, c->key.p, c->key.len, has(c, 'b'));
        else if (f == 'c')
            put_num(&l, 'c', r == MC_STORED ? cas : 0);
    }
    return emit(out, &l, NULL, 0);
}

/* ---- md ---- */

static int exec_md(struct mc_store *s, const struct mc_cmd *c, struct app_outbuf *out)
{
    const struct mc_meta *m = &c->meta;
    struct mc_mdelete_req req = {
        .has_cas = has(c, 'C'),
        .cas = m->cas,
        .invalidate = has(c, 'I'),
        .has_ttl = has(c, 'T'),
        .ttl = m->ttl,
        .new_cas = m->new_cas,
    };
    enum mc_result r = mc_store_mdelete(s, c->key.p, c->key.len, &req);
    if (r == MC_DELETED && has(c, 'q'))
        return 0;
    struct line l;
    start_line(&l, result_code(r));
    return tokens_only(c, out, &l);
}

/* ---- ma ---- */

/*
 * The answer to an ma that changed or created an item, its T and N applied at their turn. A
 * quiet success (not a creation) still applies them, and answers nothing but a long opaque.
 */
static int ma_answer(struct mc_store *s, const struct mc_cmd *c, struct mc_arith_res *res,
                     bool created, struct app_outbuf *out)
{
    bool quiet = !created && has(c, 'q');
    const struct mc_meta *m = &c->meta;
    char digits[MC_U64_DIGITS + 2];
    size_t nd = app_u64_dec(res->value, digits);
    struct line l;
    start_hit(&l, has(c, 'v'), nd);
    int64_t now = mc_store_now(s);
    for (unsigned i = 0; i < m->nflags; i++) {
        char f = m->order[i];
        if (f == 'c')
            put_num(&l, 'c', res->it->cas);
        else if (f == 't')
            put_ttl(&l, res->it, now);
        else if (f == 'T')
            mc_store_set_exptime(res->it, m->ttl, now);
        else if (f == 'N' && created)
            mc_store_set_exptime(res->it, m->vivify_ttl, now);
        else if (f == 'O' && m->opaque_long)
            return error_line(out, mc_err_str(MC_ERR_OPAQUE));
        else if (f == 'O')
            put_opaque(&l, m);
        else if (f == 'k')
            put_key(&l, c->key.p, c->key.len, has(c, 'b'));
    }
    if (quiet)
        return 0;
    if (!has(c, 'v'))
        return emit(out, &l, NULL, 0);
    memcpy(digits + nd, "\r\n", 2);
    return emit(out, &l, digits, nd + 2);
}

static int exec_ma(struct mc_store *s, const struct mc_cmd *c, struct app_outbuf *out)
{
    const struct mc_meta *m = &c->meta;
    struct mc_arith_req req = {
        .incr = m->mode != 'D' && m->mode != '-',
        .delta = m->delta,
        .cas = has(c, 'C') ? m->cas : 0,
        .vivify = has(c, 'N'),
        .initial = has(c, 'J') ? m->initial : 0,
        .new_cas = m->new_cas,
    };
    struct mc_arith_res res;
    enum mc_result r = mc_store_arith(s, c->key.p, c->key.len, &req, &res);
    struct line l;
    switch (r) {
    case MC_DELTA_OK: return ma_answer(s, c, &res, false, out);
    case MC_STORED: return ma_answer(s, c, &res, true, out);
    case MC_NOT_FOUND:
    case MC_EXISTS: start_line(&l, result_code(r)); return tokens_only(c, out, &l);
    case MC_NO_MEMORY:
        return error_line(out, req.vivify ? "SERVER_ERROR Out of memory allocating new item"
                                          : "SERVER_ERROR out of memory");
    default: return error_line(out, mc_result_str(r));
    }
}

/* ---- me ---- */

static int exec_me(struct mc_store *s, const struct mc_cmd *c, struct app_outbuf *out)
{
    const struct mc_item *it = mc_store_find(s, c->key.p, c->key.len);
    if (!it)
        return mc_reply_line(out, "EN");
    int64_t now = mc_store_now(s);
    struct line l;
    start_line(&l, "ME ");
    if (it->iflags & MC_ITEM_KEY_BINARY)
        put_base64(&l, mc_item_key(it), it->nkey);
    else
        put(&l, mc_item_key(it), it->nkey);
    /* memcached prints its 32-bit clock differences as they wrap: exp is -(seconds left). */
    int exp = it->exptime == 0 ? -1 : (int32_t)(uint32_t)(now - it->exptime);
    app_outbuf_printf(&l.o, " exp=%d la=%u cas=%llu fetch=%s cls=1 size=%zu", exp,
                      (uint32_t)(now - it->time), (unsigned long long)it->cas,
                      it->iflags & MC_ITEM_FETCHED ? "yes" : "no",
                      mc_item_size(it->nkey, it->nbytes));
    return emit(out, &l, NULL, 0);
}

int mc_meta_exec(struct mc_store *s, const struct mc_cmd *c, struct app_outbuf *out)
{
    switch (c->op) {
    case MC_OP_MG: return exec_mg(s, c, out);
    case MC_OP_MS: return exec_ms(s, c, out);
    case MC_OP_MD: return exec_md(s, c, out);
    case MC_OP_MA: return exec_ma(s, c, out);
    case MC_OP_ME: return exec_me(s, c, out);
    default: return -EINVAL;
    }
}

/* ---- the binary protocol ---- */

#define BIN_STATUS_UNKNOWN_COMMAND 0x0081

static const char bin_text[] =
    "Binary protocol not supported: this server speaks the memcached text and meta protocols";

int mc_meta_binary_refusal(const struct mc_cmd *c, struct app_outbuf *out)
{
    size_t body = sizeof bin_text - 1;
    unsigned char h[24] = {0x81, c->bin.opcode};
    h[6] = BIN_STATUS_UNKNOWN_COMMAND >> 8;
    h[7] = BIN_STATUS_UNKNOWN_COMMAND & 0xff;
    h[8] = (unsigned char)(body >> 24);
    h[9] = (unsigned char)(body >> 16);
    h[10] = (unsigned char)(body >> 8);
    h[11] = (unsigned char)body;
    memcpy(h + 12, c->bin.opaque, 4);
    if (!app_outbuf_reserve(out, sizeof h + body))
        return app_outbuf_overflow(out);
    app_outbuf_put(out, h, sizeof h);
    return app_outbuf_put(out, bin_text, body);
}
