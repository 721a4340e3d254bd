/*
 * memcached ASCII protocol parser: line framing, tokens, the per-command rules of memcached
 * 1.6's process_command_ascii() and friends, data blocks and swallowing. See mc_proto.h for
 * the behaviour and its few deliberate differences.
 */
#include "mc_proto_int.h"
#include "mc_num.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* memcached lets a long get line start with at most this many spaces. */
#define MC_MAX_LEADING_SPACES 100

/* Length of a binary protocol request header. */
#define MC_BIN_HEADER 24

static const char *const err_text[] = {
    [MC_ERR_NONE] = "",
    [MC_ERR_UNKNOWN] = "ERROR",
    [MC_ERR_FORMAT] = "CLIENT_ERROR bad command line format",
    [MC_ERR_DATA_CHUNK] = "CLIENT_ERROR bad data chunk",
    [MC_ERR_EXPTIME] = "CLIENT_ERROR invalid exptime argument",
    [MC_ERR_DELTA] = "CLIENT_ERROR invalid numeric delta argument",
    [MC_ERR_DELETE_USAGE] = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
    [MC_ERR_TOO_LARGE] = "SERVER_ERROR object too large for cache",
    [MC_ERR_DUP_FLAG] = "CLIENT_ERROR duplicate flag",
    [MC_ERR_INVALID_FLAG] = "CLIENT_ERROR invalid flag",
    [MC_ERR_BAD_FLAG] = "CLIENT_ERROR invalid or duplicate flag",
    [MC_ERR_DECODE_KEY] = "CLIENT_ERROR error decoding key",
    [MC_ERR_BAD_TOKEN] = "CLIENT_ERROR bad token in command line format",
    [MC_ERR_M_LENGTH] = "CLIENT_ERROR incorrect length for M token",
    [MC_ERR_INITIAL] = "CLIENT_ERROR invalid numeric initial value",
    [MC_ERR_DELTA_VALUE] = "CLIENT_ERROR invalid numeric delta value",
    [MC_ERR_OPAQUE] = "CLIENT_ERROR opaque token too long",
    [MC_ERR_MG_TOO_LONG] = "CLIENT_ERROR options flags are too long",
    [MC_ERR_FLAGS_TOO_LONG] = "CLIENT_ERROR options flags too long",
    [MC_ERR_MS_MODE] = "CLIENT_ERROR invalid mode for ms M token",
    [MC_ERR_MA_MODE] = "CLIENT_ERROR invalid mode for ma M token",
};

const char *mc_err_str(enum mc_err err)
{
    if ((size_t)err >= sizeof err_text / sizeof err_text[0])
        return "SERVER_ERROR";
    return err_text[err];
}

static const struct {
    const char *name;
    enum mc_op op;
} verbs[] = {
    {"get", MC_OP_GET},         {"set", MC_OP_SET},
    {"gets", MC_OP_GETS},       {"delete", MC_OP_DELETE},
    {"incr", MC_OP_INCR},       {"decr", MC_OP_DECR},
    {"add", MC_OP_ADD},         {"replace", MC_OP_REPLACE},
    {"append", MC_OP_APPEND},   {"prepend", MC_OP_PREPEND},
    {"cas", MC_OP_CAS},         {"touch", MC_OP_TOUCH},
    {"gat", MC_OP_GAT},         {"gats", MC_OP_GATS},
    {"bget", MC_OP_GET},        {"flush_all", MC_OP_FLUSH_ALL},
    {"version", MC_OP_VERSION}, {"verbosity", MC_OP_VERBOSITY},
    {"stats", MC_OP_STATS},     {"quit", MC_OP_QUIT},
};

static const struct {
    enum mc_op op;
    const char *name;
} other_names[] = {
    {MC_OP_NONE, "none"}, {MC_OP_ERROR, "error"}, {MC_OP_MG, "mg"},
    {MC_OP_MS, "ms"},     {MC_OP_MD, "md"},       {MC_OP_MA, "ma"},
    {MC_OP_ME, "me"},     {MC_OP_MN, "mn"},       {MC_OP_BINARY, "binary"},
};

const char *mc_op_name(enum mc_op op)
{
    for (size_t i = 0; i < sizeof other_names / sizeof other_names[0]; i++) {
        if (other_names[i].op == op)
            return other_names[i].name;
    }
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        if (verbs[i].op == op)
            return verbs[i].name;
    }
    return "?";
}

void mc_parser_init(struct mc_parser *p, const struct mc_parser_config *cfg)
{
    memset(p, 0, sizeof *p);
    p->item_max = cfg && cfg->item_max ? cfg->item_max : MC_ITEM_MAX_DEFAULT;
    p->get_line_max = cfg && cfg->get_line_max ? cfg->get_line_max : MC_GET_LINE_MAX_DEFAULT;
    p->lax_keys = cfg && cfg->lax_keys;
}

/* ---- tokens ---- */

static void tokenize(struct mc_line *l)
{
    const char *s = l->start, *e = l->end;
    l->n = 0;
    while (l->n < MC_MAX_TOKENS - 1) {
        while (s < e && *s == ' ')
            s++;
        if (s == e)
            break;
        const char *w = s;
        while (s < e && *s != ' ')
            s++;
        l->t[l->n++] = (struct mc_tok){w, (size_t)(s - w)};
    }
    while (s < e && *s == ' ')
        s++;
    l->t[l->n++] = (struct mc_tok){s < e ? s : NULL, 0};
}

static bool tok_is(const struct mc_tok *t, const char *word)
{
    size_t n = strlen(word);
    return t->len == n && memcmp(t->p, word, n) == 0;
}

/* memcached's set_noreply_maybe(): the last word is "noreply". */
static bool last_is_noreply(const struct mc_line *l)
{
    return tok_is(&l->t[l->n - 2], "noreply");
}

/*
 * Keys: 1..250 bytes, no control bytes (a deliberate addition to memcached's length check),
 * unless the parser is lax (then only the length, as memcached).
 */
static bool key_ok(const struct mc_parser *p, const char *k, size_t n)
{
    if (n == 0 || n > MC_KEY_MAX)
        return false;
    if (p->lax_keys)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c <= ' ' || c == 0x7f)
            return false;
    }
    return true;
}

/* ---- results ---- */

static ssize_t fail(struct mc_ctx *x, enum mc_err err, size_t consumed)
{
    x->cmd->op = MC_OP_ERROR;
    x->cmd->err = err;
    return (ssize_t)consumed;
}

ssize_t mc__fail_swallow(struct mc_ctx *x, const struct mc_line *l, enum mc_err err, size_t block)
{
    size_t avail = x->len - l->size;
    size_t take = avail < block ? avail : block;
    x->p->swallow = block - take;
    return fail(x, err, l->size + take);
}

/* An error that "noreply" silences: memcached's out_string() after set_noreply_maybe(). */
static ssize_t fail_nr(struct mc_ctx *x, const struct mc_line *l, enum mc_err err)
{
    x->cmd->noreply = last_is_noreply(l);
    return fail(x, err, l->size);
}

static ssize_t done(struct mc_ctx *x, enum mc_op op, size_t consumed)
{
    x->cmd->op = op;
    return (ssize_t)consumed;
}

/* For mc_meta_parse.c (mc_proto_int.h). */
bool mc__key_ok(const struct mc_parser *p, const char *k, size_t n)
{
    return key_ok(p, k, n);
}

ssize_t mc__fail(struct mc_ctx *x, enum mc_err err, size_t consumed)
{
    return fail(x, err, consumed);
}

ssize_t mc__done(struct mc_ctx *x, enum mc_op op, size_t consumed)
{
    return done(x, op, consumed);
}

/* ---- get, gets, gat, gats ---- */

static ssize_t parse_get(struct mc_ctx *x, const struct mc_line *l, enum mc_op op)
{
    struct mc_cmd *c = x->cmd;
    if (l->n < 3)
        return fail(x, MC_ERR_UNKNOWN, l->size);
    size_t first = 1;
    if (op == MC_OP_GAT || op == MC_OP_GATS) {
        if (!mc_parse_i32(l->t[1].p, l->t[1].len, &c->exptime))
            return fail(x, MC_ERR_EXPTIME, l->size);
        first = 2;
    }
    const struct mc_tok *k = &l->t[first];
    if (k->p)
        c->keys = (struct mc_slice){k->p, (size_t)(l->end - k->p)};
    size_t pos = 0;
    struct mc_slice key;
    while (mc_cmd_next_key(c, &pos, &key)) {
        if (!key_ok(x->p, key.p, key.len))
            return fail(x, MC_ERR_FORMAT, l->size);
        c->nkeys++;
    }
    return done(x, op, l->size);
}

bool mc_cmd_next_key(const struct mc_cmd *cmd, size_t *pos, struct mc_slice *key)
{
    const char *p = cmd->keys.p;
    size_t n = cmd->keys.len, i = *pos;
    while (i < n && p[i] == ' ')
        i++;
    if (i >= n)
        return false;
    size_t s = i;
    while (i < n && p[i] != ' ')
        i++;
    *key = (struct mc_slice){p + s, i - s};
    *pos = i;
    return true;
}

/* ---- storage commands ---- */

/* The numbers of a storage line: flags exptime bytes [cas]. False: bad format. */
static bool storage_numbers(struct mc_cmd *c, const struct mc_line *l, bool with_cas, int32_t *vlen)
{
    if (!mc_parse_u32(l->t[2].p, l->t[2].len, &c->flags) ||
        !mc_parse_i32(l->t[3].p, l->t[3].len, &c->exptime) ||
        !mc_parse_i32(l->t[4].p, l->t[4].len, vlen))
        return false;
    if (with_cas && !mc_parse_u64(l->t[5].p, l->t[5].len, &c->cas))
        return false;
    return *vlen >= 0 && *vlen <= INT_MAX - 2;
}

static ssize_t parse_storage(struct mc_ctx *x, const struct mc_line *l, enum mc_op op)
{
    struct mc_cmd *c = x->cmd;
    size_t want = op == MC_OP_CAS ? 7 : 6;
    if (l->n != want && l->n != want + 1)
        return fail(x, MC_ERR_UNKNOWN, l->size);
    int32_t vlen;
    if (!key_ok(x->p, l->t[1].p, l->t[1].len) || !storage_numbers(c, l, op == MC_OP_CAS, &vlen))
        return fail_nr(x, l, MC_ERR_FORMAT);
    c->noreply = last_is_noreply(l);
    c->key = (struct mc_slice){l->t[1].p, l->t[1].len};
    c->op = op;
    return mc__read_block(x, l, (size_t)vlen);
}

ssize_t mc__read_block(struct mc_ctx *x, const struct mc_line *l, size_t vlen)
{
    struct mc_cmd *c = x->cmd;
    size_t block = vlen + 2;
    if (mc_item_size(c->key.len, vlen) > x->p->item_max) {
        c->failed = c->op;
        return mc__fail_swallow(x, l, MC_ERR_TOO_LARGE, block);
    }
    size_t total = l->size + block;
    if (x->len < total) {
        x->p->need = total;
        return 0;
    }
    const char *d = x->buf + l->size;
    if (d[vlen] != '\r' || d[vlen + 1] != '\n')
        return fail(x, MC_ERR_DATA_CHUNK, total);
    c->data = (struct mc_slice){d, vlen};
    return done(x, c->op, total);
}

/* ---- single-key commands ---- */

static ssize_t parse_touch(struct mc_ctx *x, const struct mc_line *l)
{
    struct mc_cmd *c = x->cmd;
    if (l->n != 4 && l->n != 5)
        return fail(x, MC_ERR_UNKNOWN, l->size);
    if (!key_ok(x->p, l->t[1].p, l->t[1].len))
        return fail_nr(x, l, MC_ERR_FORMAT);
    if (!mc_parse_i32(l->t[2].p, l->t[2].len, &c->exptime))
        return fail_nr(x, l, MC_ERR_EXPTIME);
    c->noreply = last_is_noreply(l);
    c->key = (struct mc_slice){l->t[1].p, l->t[1].len};
    return done(x, MC_OP_TOUCH, l->size);
}

static ssize_t parse_arith(struct mc_ctx *x, const struct mc_line *l, enum mc_op op)
{
    struct mc_cmd *c = x->cmd;
    if (l->n != 4 && l->n != 5)
        return fail(x, MC_ERR_UNKNOWN, l->size);
    if (!key_ok(x->p, l->t[1].p, l->t[1].len))
        return fail_nr(x, l, MC_ERR_FORMAT);
    if (!mc_parse_u64(l->t[2].p, l->t[2].len, &c->delta))
        return fail_nr(x, l, MC_ERR_DELTA);
    c->noreply = last_is_noreply(l);
    c->key = (struct mc_slice){l->t[1].p, l->t[1].len};
    return done(x, op, l->size);
}

/* delete <key> [0] [noreply]: memcached still accepts the old hold time when it is "0". */
static ssize_t parse_delete(struct mc_ctx *x, const struct mc_line *l)
{
    struct mc_cmd *c = x->cmd;
    if (l->n < 3 || l->n > 5)
        return fail(x, MC_ERR_UNKNOWN, l->size);
    if (l->n > 3) {
        bool zero = tok_is(&l->t[2], "0");
        bool nr = last_is_noreply(l);
        bool valid = (l->n == 4 && (zero || nr)) || (l->n == 5 && zero && nr);
        if (!valid)
            return fail_nr(x, l, MC_ERR_DELETE_USAGE);
        c->noreply = nr;
    }
    if (!key_ok(x->p, l->t[1].p, l->t[1].len))
        return fail(x, MC_ERR_FORMAT, l->size); /* c->noreply already says */
    c->key = (struct mc_slice){l->t[1].p, l->t[1].len};
    return done(x, MC_OP_DELETE, l->size);
}

/* ---- commands without a key ---- */

static ssize_t parse_flush_all(struct mc_ctx *x, const struct mc_line *l)
{
    struct mc_cmd *c = x->cmd;
    if (l->n < 2 || l->n > 4)
        return fail(x, MC_ERR_UNKNOWN, l->size);
    c->noreply = last_is_noreply(l);
    if (l->n != (c->noreply ? 3u : 2u) && !mc_parse_i32(l->t[1].p, l->t[1].len, &c->exptime))
        return fail(x, MC_ERR_EXPTIME, l->size);
    return done(x, MC_OP_FLUSH_ALL, l->size);
}

static ssize_t parse_verbosity(struct mc_ctx *x, const struct mc_line *l)
{
    struct mc_cmd *c = x->cmd;
    if (l->n != 3 && l->n != 4)
        return fail(x, MC_ERR_UNKNOWN, l->size);
    c->noreply = last_is_noreply(l);
    if (!mc_parse_u32(l->t[1].p, l->t[1].len, &c->verbosity))
        return fail(x, MC_ERR_FORMAT, l->size);
    return done(x, MC_OP_VERBOSITY, l->size);
}

static ssize_t parse_stats(struct mc_ctx *x, const struct mc_line *l)
{
    if (l->n > 2) {
        const char *s = l->t[1].p, *e = l->end;
        while (e > s && e[-1] == ' ')
            e--;
        x->cmd->args = (struct mc_slice){s, (size_t)(e - s)};
    }
    return done(x, MC_OP_STATS, l->size);
}

static ssize_t dispatch(struct mc_ctx *x, const struct mc_line *l)
{
    if (l->n < 2 || l->t[0].len < 2)
        return fail(x, MC_ERR_UNKNOWN, l->size);
    if (l->t[0].len == 2 && l->t[0].p[0] == 'm')
        return mc__parse_meta(x, l);
    enum mc_op op = MC_OP_NONE;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0] && op == MC_OP_NONE; i++) {
        if (tok_is(&l->t[0], verbs[i].name))
            op = verbs[i].op;
    }
    switch (op) {
    case MC_OP_GET:
    case MC_OP_GETS:
    case MC_OP_GAT:
    case MC_OP_GATS: return parse_get(x, l, op);
    case MC_OP_SET:
    case MC_OP_ADD:
    case MC_OP_REPLACE:
    case MC_OP_APPEND:
    case MC_OP_PREPEND:
    case MC_OP_CAS: return parse_storage(x, l, op);
    case MC_OP_DELETE: return parse_delete(x, l);
    case MC_OP_TOUCH: return parse_touch(x, l);
    case MC_OP_INCR:
    case MC_OP_DECR: return parse_arith(x, l, op);
    case MC_OP_FLUSH_ALL: return parse_flush_all(x, l);
    case MC_OP_VERBOSITY: return parse_verbosity(x, l);
    case MC_OP_STATS: return parse_stats(x, l);
    case MC_OP_VERSION:
    case MC_OP_QUIT: return done(x, op, l->size);
    default: return fail(x, MC_ERR_UNKNOWN, l->size);
    }
}

/* ---- framing ---- */

/* May a line this long go on? Only a get/gets may pass MC_LINE_MAX, up to get_line_max. */
static bool long_line_ok(const struct mc_parser *p, const char *buf, size_t n)
{
    if (n <= MC_LINE_MAX)
        return true;
    size_t i = 0;
    while (i < n && buf[i] == ' ')
        i++;
    if (i > MC_MAX_LEADING_SPACES || n > p->get_line_max)
        return false;
    return (n - i >= 4 && memcmp(buf + i, "get ", 4) == 0) ||
           (n - i >= 5 && memcmp(buf + i, "gets ", 5) == 0);
}

static ssize_t swallow(struct mc_parser *p, size_t len, struct mc_cmd *cmd)
{
    size_t take = len < p->swallow ? len : p->swallow;
    p->swallow -= take;
    p->need = take ? 0 : p->swallow;
    cmd->op = MC_OP_NONE;
    return (ssize_t)take;
}

/*
 * The binary protocol's first request: its header is enough to answer it (and close), so the
 * whole input is consumed.
 */
static ssize_t binary_request(struct mc_parser *p, const char *buf, size_t len, struct mc_cmd *cmd)
{
    if (len < MC_BIN_HEADER) {
        p->need = MC_BIN_HEADER;
        return 0;
    }
    cmd->op = MC_OP_BINARY;
    cmd->bin.opcode = (uint8_t)buf[1];
    memcpy(cmd->bin.opaque, buf + 12, sizeof cmd->bin.opaque);
    return (ssize_t)len;
}

static ssize_t parse_one(struct mc_parser *p, const char *buf, size_t len, struct mc_cmd *cmd)
{
    if (p->swallow)
        return swallow(p, len, cmd);
    if (len == 0)
        return 0;
    if (!p->started && (unsigned char)buf[0] == 0x80)
        return binary_request(p, buf, len, cmd);
    if (p->scanned > len)
        p->scanned = 0;
    const char *nl = memchr(buf + p->scanned, '\n', len - p->scanned);
    size_t content = nl ? (size_t)(nl - buf) : len;
    if (!long_line_ok(p, buf, content))
        return -EMSGSIZE;
    p->scanned = content;
    if (!nl)
        return 0;
    struct mc_line l = {.start = buf, .end = nl, .size = content + 1};
    if (content > 1 && nl[-1] == '\r')
        l.end--;
    tokenize(&l);
    struct mc_ctx x = {p, buf, len, cmd};
    ssize_t r = dispatch(&x, &l);
    if (r > 0)
        p->scanned = 0;
    return r;
}

ssize_t mc_parse(struct mc_parser *p, const char *buf, size_t len, struct mc_cmd *cmd)
{
    memset(cmd, 0, sizeof *cmd);
    p->need = 0;
    ssize_t r = parse_one(p, buf, len, cmd);
    if (r > 0)
        p->started = true;
    return r;
}

enum mc_route mc_cmd_route(const struct mc_cmd *cmd)
{
    switch (cmd->op) {
    case MC_OP_GET:
    case MC_OP_GETS:
    case MC_OP_GAT:
    case MC_OP_GATS: return MC_ROUTE_KEYS;
    case MC_OP_SET:
    case MC_OP_ADD:
    case MC_OP_REPLACE:
    case MC_OP_APPEND:
    case MC_OP_PREPEND:
    case MC_OP_CAS:
    case MC_OP_DELETE:
    case MC_OP_TOUCH:
    case MC_OP_INCR:
    case MC_OP_DECR:
    case MC_OP_MG:
    case MC_OP_MS:
    case MC_OP_MD:
    case MC_OP_MA:
    case MC_OP_ME: return MC_ROUTE_KEY;
    case MC_OP_ERROR: return cmd->err == MC_ERR_TOO_LARGE ? MC_ROUTE_KEY : MC_ROUTE_LOCAL;
    case MC_OP_FLUSH_ALL:
    case MC_OP_STATS: return MC_ROUTE_ALL;
    default: return MC_ROUTE_LOCAL;
    }
}
