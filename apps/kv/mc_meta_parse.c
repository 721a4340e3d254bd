/*
 * Meta command lines (mg, ms, md, ma, me, mn) as memcached 1.6.18 parses them: the checks in
 * its order, its error texts, and its flag rules (each flag at most once, numbers after their
 * letter, base64 keys decoded). What happens at run time is mc_meta_exec.c's; see mc_meta.h.
 */
#include "mc_base64.h"
#include "mc_num.h"
#include "mc_proto_int.h"

#include <limits.h>
#include <string.h>

/* memcached's MFLAG_MAX_OPT_LENGTH: lines of more tokens (terminal included) are refused. */
#define MC_META_MAX_TOKENS 20

/* A meta command's parse: the line, its command, and what its flags said. */
struct meta_parse {
    struct mc_ctx *x;
    const struct mc_line *l;
    struct mc_meta *m;
    enum mc_err err; /* the error memcached's preparse would report, MC_ERR_NONE if none */
};

/* ---- one flag ---- */

static bool number_i32(const struct mc_tok *t, int32_t *out)
{
    return mc_parse_i32(t->p + 1, t->len - 1, out);
}

static bool number_u64(const struct mc_tok *t, uint64_t *out)
{
    return mc_parse_u64(t->p + 1, t->len - 1, out);
}

/* 'b': the key becomes its base64 decoding (kept in the parser). */
static void decode_key(struct meta_parse *mp)
{
    struct mc_cmd *c = mp->x->cmd;
    size_t n = mc_base64_decode(c->key.p, c->key.len, mp->x->p->key);
    c->key = (struct mc_slice){(const char *)mp->x->p->key, n};
    if (n == 0)
        mp->err = MC_ERR_DECODE_KEY;
}

static void opaque(struct mc_meta *m, const struct mc_tok *t)
{
    m->opaque_long = t->len > MC_META_OPAQUE_MAX;
    if (m->opaque_long)
        return;
    m->opaque_len = (uint8_t)t->len;
    memcpy(m->opaque, t->p, t->len);
}

/*
 * A flag with a number or token: reads it. A bad one sets mp->err to memcached's text for it
 * (F keeps whatever text was set before, as memcached does) and parsing goes on.
 */
static void valued_flag(struct meta_parse *mp, const struct mc_tok *t)
{
    struct mc_meta *m = mp->m;
    bool ok = true;
    enum mc_err err = MC_ERR_BAD_TOKEN;
    switch (t->p[0]) {
    case 'N': ok = number_i32(t, &m->vivify_ttl); break;
    case 'T': ok = number_i32(t, &m->ttl); break;
    case 'R': ok = number_i32(t, &m->recache_ttl); break;
    case 'C': ok = number_u64(t, &m->cas); break;
    case 'E': ok = number_u64(t, &m->new_cas); break;
    case 'J': ok = number_u64(t, &m->initial), err = MC_ERR_INITIAL; break;
    case 'D': ok = number_u64(t, &m->delta), err = MC_ERR_DELTA_VALUE; break;
    case 'F':
        ok = mc_parse_u32(t->p + 1, t->len - 1, &m->client_flags);
        err = mp->err != MC_ERR_NONE ? mp->err : MC_ERR_FORMAT;
        break;
    case 'M':
        ok = t->len == 2;
        m->mode = ok ? t->p[1] : 0;
        err = MC_ERR_M_LENGTH;
        break;
    case 'O': opaque(m, t); break;
    }
    if (!ok)
        mp->err = err;
}

/* Is c a flag memcached 1.6.18 knows (plus E, from later releases)? */
static bool known_flag(char c)
{
    return c && strchr("bNTRlOPLkstcfvhuqFCMJDIE", c) != NULL;
}

/*
 * memcached's _meta_flag_preparse over the tokens from `first` on: a repeated first byte (or
 * one of 127 and up) is a duplicate flag and an unknown letter an invalid flag, both at once;
 * bad values set mp->err and parsing goes on, the last one's text winning.
 */
static enum mc_err preparse(struct meta_parse *mp, size_t first)
{
    uint64_t seen[2] = {0, 0};
    struct mc_meta *m = mp->m;
    for (size_t i = first; i + 1 < mp->l->n; i++) {
        const struct mc_tok *t = &mp->l->t[i];
        unsigned char o = (unsigned char)t->p[0];
        if (o >= 127 || (seen[o >> 6] >> (o & 63) & 1))
            return MC_ERR_DUP_FLAG;
        seen[o >> 6] |= (uint64_t)1 << (o & 63);
        if (!known_flag((char)o))
            return MC_ERR_INVALID_FLAG;
        m->has |= (uint64_t)1 << (o - 'A');
        m->order[m->nflags++] = (char)o;
        if (o == 'b')
            decode_key(mp);
        else
            valued_flag(mp, t);
    }
    return mp->err;
}

/* ---- the commands ---- */

static bool valid_mode(const char *modes, char mode)
{
    return mode == 0 || strchr(modes, mode) != NULL;
}

/* ms <key> <datalen> <flags>*: errors found after <datalen> swallow the data block. */
static ssize_t parse_ms(struct meta_parse *mp)
{
    struct mc_ctx *x = mp->x;
    const struct mc_line *l = mp->l;
    int32_t vlen;
    if (l->n == 3)
        return mc__fail(x, MC_ERR_FORMAT, l->size);
    if (l->n > MC_META_MAX_TOKENS)
        return mc__fail(x, MC_ERR_FLAGS_TOO_LONG, l->size);
    if (!mc_parse_i32(l->t[2].p, l->t[2].len, &vlen) || vlen < 0 || vlen > INT_MAX - 2)
        return mc__fail(x, MC_ERR_FORMAT, l->size);
    size_t block = (size_t)vlen + 2;
    enum mc_err err = preparse(mp, 3);
    if (err == MC_ERR_NONE && mp->m->opaque_long)
        err = MC_ERR_OPAQUE;
    if ((err == MC_ERR_NONE || err == MC_ERR_OPAQUE) && !valid_mode("EAPRS", mp->m->mode))
        err = MC_ERR_MS_MODE;
    if (err != MC_ERR_NONE)
        return mc__fail_swallow(x, l, err, block);
    return mc__read_block(x, l, (size_t)vlen);
}

static ssize_t parse_keyed(struct meta_parse *mp, enum mc_op op)
{
    struct mc_ctx *x = mp->x;
    const struct mc_line *l = mp->l;
    x->cmd->op = op;
    x->cmd->key = (struct mc_slice){l->t[1].p, l->t[1].len};
    mp->m->delta = 1;
    if (op == MC_OP_MS)
        return parse_ms(mp);
    if (l->n > MC_META_MAX_TOKENS)
        return mc__fail(x, op == MC_OP_MG ? MC_ERR_MG_TOO_LONG : MC_ERR_FLAGS_TOO_LONG, l->size);
    enum mc_err err = preparse(mp, 2);
    if (err != MC_ERR_NONE)
        return mc__fail(x, op == MC_OP_MG ? err : MC_ERR_BAD_FLAG, l->size);
    if (op == MC_OP_MD && mp->m->opaque_long)
        return mc__fail(x, MC_ERR_OPAQUE, l->size);
    if (op == MC_OP_MA && !valid_mode("I+D-", mp->m->mode))
        return mc__fail(x, MC_ERR_MA_MODE, l->size);
    return mc__done(x, op, l->size);
}

/* me <key> [b]: only the exact token "b" in third place decodes the key; the rest is ignored. */
static ssize_t parse_me(struct meta_parse *mp)
{
    struct mc_ctx *x = mp->x;
    const struct mc_line *l = mp->l;
    if (l->n < 3 || !mc__key_ok(x->p, l->t[1].p, l->t[1].len))
        return mc__fail(x, MC_ERR_FORMAT, l->size);
    x->cmd->key = (struct mc_slice){l->t[1].p, l->t[1].len};
    if (l->n >= 4 && l->t[2].len == 1 && l->t[2].p[0] == 'b') {
        mp->m->has |= (uint64_t)1 << ('b' - 'A');
        decode_key(mp);
        if (mp->err != MC_ERR_NONE)
            return mc__fail(x, MC_ERR_FORMAT, l->size);
    }
    return mc__done(x, MC_OP_ME, l->size);
}

ssize_t mc__parse_meta(struct mc_ctx *x, const struct mc_line *l)
{
    struct meta_parse mp = {x, l, &x->cmd->meta, MC_ERR_NONE};
    enum mc_op op;
    switch (l->t[0].p[1]) {
    case 'n': return mc__done(x, MC_OP_MN, l->size);
    case 'e': return parse_me(&mp);
    case 'g': op = MC_OP_MG; break;
    case 's': op = MC_OP_MS; break;
    case 'd': op = MC_OP_MD; break;
    case 'a': op = MC_OP_MA; break;
    default: return mc__fail(x, MC_ERR_UNKNOWN, l->size);
    }
    if (l->n < 3)
        return mc__fail(x, MC_ERR_UNKNOWN, l->size);
    /* memcached checks only the length; refusing control bytes is ours (see mc_proto.h),
     * unless the parser is lax. */
    if (!mc__key_ok(x->p, l->t[1].p, l->t[1].len))
        return mc__fail(x, MC_ERR_FORMAT, l->size);
    return parse_keyed(&mp, op);
}
