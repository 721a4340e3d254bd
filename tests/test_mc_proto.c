/*
 * memcached ASCII parser (apps/kv/mc_proto): every command, errors as memcached 1.6 words
 * them, data blocks holding "\r\n", too-large values swallowed, long lines, and the same
 * results whatever way the input is split. Transcripts run the parser and mc_exec on one store
 * with a fixed clock and compare the exact bytes a client would get.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/kv/mc_exec.h"
#include "apps/kv/mc_proto.h"

#define NOW 1700000000

static int64_t fixed_now(void *arg)
{
    (void)arg;
    return NOW;
}

/* ---- a connection stand-in: input buffer, parser, optional store ---- */

struct conn {
    struct mc_parser p;
    char *in;
    size_t len, cap;
    struct mc_store *store; /* NULL: parse only */
    struct app_outbuf out;  /* answers (with a store) */
    char log[1 << 16];      /* one description per command */
    size_t loglen;
    bool closed;
};

static void conn_init(struct conn *c, bool with_store, size_t item_max)
{
    memset(c, 0, sizeof *c);
    struct mc_parser_config pc = {.item_max = item_max, .get_line_max = 8192};
    mc_parser_init(&c->p, &pc);
    if (with_store) {
        struct mc_store_config sc = {.mem_limit = 4 << 20, .item_max = item_max, .now = fixed_now};
        c->store = mc_store_create(&sc);
        cr_assert_not_null(c->store);
    }
    app_outbuf_init(&c->out);
}

static void conn_fini(struct conn *c)
{
    free(c->in);
    mc_store_destroy(c->store);
    app_outbuf_free(&c->out);
}

static void put_slice(struct conn *c, const char *tag, struct mc_slice s)
{
    c->loglen += (size_t)snprintf(c->log + c->loglen, sizeof c->log - c->loglen, " %s=", tag);
    for (size_t i = 0; i < s.len && c->loglen + 8 < sizeof c->log; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        c->loglen += (size_t)snprintf(c->log + c->loglen, sizeof c->log - c->loglen,
                                      ch > ' ' && ch < 0x7f ? "%c" : "\\x%02x", ch);
    }
}

/* Appends a canonical description of cmd to the log. */
static void describe(struct conn *c, const struct mc_cmd *m)
{
    c->loglen += (size_t)snprintf(
        c->log + c->loglen, sizeof c->log - c->loglen,
        "[%s err=%d failed=%s nr=%d nkeys=%u flags=%u exp=%d cas=%llu delta=%llu verb=%u",
        mc_op_name(m->op), m->err, mc_op_name(m->failed), m->noreply, m->nkeys, m->flags,
        m->exptime, (unsigned long long)m->cas, (unsigned long long)m->delta, m->verbosity);
    put_slice(c, "key", m->key);
    put_slice(c, "keys", m->keys);
    put_slice(c, "data", m->data);
    put_slice(c, "args", m->args);
    c->loglen += (size_t)snprintf(c->log + c->loglen, sizeof c->log - c->loglen, "]\n");
}

/* Parses (and runs) everything parsable in the buffer, as a server would after a read. */
static void conn_pump(struct conn *c)
{
    size_t off = 0;
    while (!c->closed) {
        struct mc_cmd m;
        ssize_t r = mc_parse(&c->p, c->in + off, c->len - off, &m);
        if (r < 0) {
            cr_assert_eq(r, -EMSGSIZE);
            c->closed = true;
            c->loglen += (size_t)snprintf(c->log + c->loglen, sizeof c->log - c->loglen, "CLOSE\n");
            break;
        }
        if (r == 0) {
            /* The hint never asks for bytes we already have. */
            cr_assert(c->p.need == 0 || c->p.need > c->len - off);
            break;
        }
        cr_assert_leq((size_t)r, c->len - off);
        off += (size_t)r;
        if (m.op != MC_OP_NONE)
            describe(c, &m);
        if (c->store && mc_exec(c->store, &m, &c->out) == 1)
            c->closed = true;
    }
    memmove(c->in, c->in + off, c->len - off);
    c->len -= off;
}

static void conn_feed(struct conn *c, const char *data, size_t n)
{
    if (c->closed)
        return;
    if (c->len + n > c->cap) {
        c->cap = (c->len + n) * 2;
        c->in = realloc(c->in, c->cap);
        cr_assert_not_null(c->in);
    }
    memcpy(c->in + c->len, data, n);
    c->len += n;
    conn_pump(c);
}

/* The answer bytes for `in` sent in one piece, as a NUL-terminated string (caller frees). */
static char *transcript(const char *in, size_t n, size_t item_max)
{
    struct conn *c = malloc(sizeof *c);
    conn_init(c, true, item_max);
    conn_feed(c, in, n);
    char *s = malloc(c->out.len + 1);
    if (c->out.len)
        memcpy(s, c->out.data, c->out.len);
    s[c->out.len] = '\0';
    conn_fini(c);
    free(c);
    return s;
}

static void expect_transcript(const char *in, const char *want)
{
    char *got = transcript(in, strlen(in), 0);
    cr_expect_str_eq(got, want, "input:\n%s\ngot:\n%s\nwant:\n%s", in, got, want);
    free(got);
}

/* Parses one command out of `in` (which must hold it whole). */
static ssize_t parse1(const char *in, struct mc_cmd *m)
{
    struct mc_parser p;
    mc_parser_init(&p, NULL);
    return mc_parse(&p, in, strlen(in), m);
}

static bool slice_is(struct mc_slice s, const char *text)
{
    return s.len == strlen(text) && memcmp(s.p, text, s.len) == 0;
}

/* ---- every command ---- */

Test(mc_proto, get_keys)
{
    struct mc_cmd m;
    const char *in = "get a bb  ccc\r\n";
    cr_assert_eq(parse1(in, &m), (ssize_t)strlen(in));
    cr_assert_eq(m.op, MC_OP_GET);
    cr_assert_eq(m.nkeys, 3);
    const char *want[] = {"a", "bb", "ccc"};
    size_t pos = 0, i = 0;
    struct mc_slice k;
    while (mc_cmd_next_key(&m, &pos, &k))
        cr_assert(slice_is(k, want[i++]));
    cr_assert_eq(i, 3);
    cr_assert_eq(mc_cmd_route(&m), MC_ROUTE_KEYS);

    cr_assert_eq(parse1("gets x\n", &m), 7); /* a bare "\n" ends a line too */
    cr_assert_eq(m.op, MC_OP_GETS);
    cr_assert(slice_is(m.keys, "x"));
    cr_assert_eq(parse1("bget x\r\n", &m), 8);
    cr_assert_eq(m.op, MC_OP_GET);
}

Test(mc_proto, get_many_keys_beyond_memcached_token_limit)
{
    char line[2048] = "get";
    for (int i = 0; i < 100; i++)
        snprintf(line + strlen(line), sizeof line - strlen(line), " k%d", i);
    strcat(line, "\r\n");
    struct mc_cmd m;
    cr_assert_eq(parse1(line, &m), (ssize_t)strlen(line));
    cr_assert_eq(m.op, MC_OP_GET);
    cr_assert_eq(m.nkeys, 100);
    size_t pos = 0;
    struct mc_slice k;
    for (int i = 0; i < 100; i++) {
        char want[16];
        snprintf(want, sizeof want, "k%d", i);
        cr_assert(mc_cmd_next_key(&m, &pos, &k));
        cr_assert(slice_is(k, want));
    }
    cr_assert_not(mc_cmd_next_key(&m, &pos, &k));
}

Test(mc_proto, gat_gats)
{
    struct mc_cmd m;
    cr_assert_gt(parse1("gat 100 a b\r\n", &m), 0);
    cr_assert_eq(m.op, MC_OP_GAT);
    cr_assert_eq(m.exptime, 100);
    cr_assert_eq(m.nkeys, 2);
    cr_assert(slice_is(m.keys, "a b"));
    cr_assert_gt(parse1("gats -1 a\r\n", &m), 0);
    cr_assert_eq(m.op, MC_OP_GATS);
    cr_assert_eq(m.exptime, -1);
    cr_assert_gt(parse1("gat 10\r\n", &m), 0); /* memcached answers just END */
    cr_assert_eq(m.op, MC_OP_GAT);
    cr_assert_eq(m.nkeys, 0);
    cr_assert_gt(parse1("gat x a\r\n", &m), 0);
    cr_assert_eq(m.op, MC_OP_ERROR);
    cr_assert_eq(m.err, MC_ERR_EXPTIME);
}

Test(mc_proto, storage_commands)
{
    static const struct {
        const char *word;
        enum mc_op op;
    } cases[] = {{"set", MC_OP_SET},
                 {"add", MC_OP_ADD},
                 {"replace", MC_OP_REPLACE},
                 {"append", MC_OP_APPEND},
                 {"prepend", MC_OP_PREPEND}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char in[128];
        for (int nr = 0; nr < 2; nr++) {
            snprintf(in, sizeof in, "%s key 42 -7 5%s\r\nhello\r\n", cases[i].word,
                     nr ? " noreply" : "");
            struct mc_cmd m;
            cr_assert_eq(parse1(in, &m), (ssize_t)strlen(in));
            cr_assert_eq(m.op, cases[i].op);
            cr_assert_eq(m.noreply, nr);
            cr_assert(slice_is(m.key, "key"));
            cr_assert(slice_is(m.data, "hello"));
            cr_assert_eq(m.flags, 42);
            cr_assert_eq(m.exptime, -7);
            cr_assert_eq(mc_cmd_route(&m), MC_ROUTE_KEY);
        }
    }
    struct mc_cmd m;
    const char *in = "cas k 0 0 3 18446744073709551615 noreply\r\nabc\r\n";
    cr_assert_eq(parse1(in, &m), (ssize_t)strlen(in));
    cr_assert_eq(m.op, MC_OP_CAS);
    cr_assert_eq(m.cas, UINT64_MAX);
    cr_assert(m.noreply);
    in = "set k 4294967295 2147483647 0\r\n\r\n";
    cr_assert_eq(parse1(in, &m), (ssize_t)strlen(in));
    cr_assert_eq(m.op, MC_OP_SET);
    cr_assert_eq(m.flags, UINT32_MAX);
    cr_assert_eq(m.exptime, INT32_MAX);
    cr_assert_eq(m.data.len, 0);
}

Test(mc_proto, data_is_length_delimited_binary)
{
    static const char in[] = "set bin 0 0 8\r\n\r\n\0\xff\r\nx\n\r\nget bin\r\n";
    struct mc_parser p;
    mc_parser_init(&p, NULL);
    struct mc_cmd m;
    ssize_t r = mc_parse(&p, in, sizeof in - 1, &m);
    cr_assert_eq(r, 25);
    cr_assert_eq(m.op, MC_OP_SET);
    cr_assert_eq(m.data.len, 8);
    cr_assert_arr_eq(m.data.p, "\r\n\0\xff\r\nx\n", 8);
    r = mc_parse(&p, in + 25, sizeof in - 1 - 25, &m);
    cr_assert_eq(m.op, MC_OP_GET);

    char *got = transcript(in, sizeof in - 1, 0);
    static const char want[] = "STORED\r\nVALUE bin 0 8\r\n\r\n\0\xff\r\nx\n\r\nEND\r\n";
    cr_assert_arr_eq(got, want, sizeof want - 1);
    free(got);
}

Test(mc_proto, single_key_commands)
{
    struct mc_cmd m;
    cr_assert_gt(parse1("touch k 10\r\n", &m), 0);
    cr_assert_eq(m.op, MC_OP_TOUCH);
    cr_assert_eq(m.exptime, 10);
    cr_assert_gt(parse1("touch k 10 noreply\r\n", &m), 0);
    cr_assert(m.noreply);
    cr_assert_gt(parse1("incr k 18446744073709551615\r\n", &m), 0);
    cr_assert_eq(m.op, MC_OP_INCR);
    cr_assert_eq(m.delta, UINT64_MAX);
    cr_assert_gt(parse1("decr k 1 noreply\r\n", &m), 0);
    cr_assert_eq(m.op, MC_OP_DECR);
    cr_assert(m.noreply);
    cr_assert_eq(m.delta, 1);
    const char *deletes[] = {"delete k\r\n", "delete k 0\r\n", "delete k noreply\r\n",
                             "delete k 0 noreply\r\n"};
    for (int i = 0; i < 4; i++) {
        cr_assert_gt(parse1(deletes[i], &m), 0);
        cr_assert_eq(m.op, MC_OP_DELETE, "%s", deletes[i]);
        cr_assert(slice_is(m.key, "k"));
        cr_assert_eq(m.noreply, i >= 2);
    }
}

Test(mc_proto, keyless_commands)
{
    struct mc_cmd m;
    cr_assert_gt(parse1("flush_all\r\n", &m), 0);
    cr_assert_eq(m.op, MC_OP_FLUSH_ALL);
    cr_assert_eq(m.exptime, 0);
    cr_assert_eq(mc_cmd_route(&m), MC_ROUTE_ALL);
    cr_assert_gt(parse1("flush_all 30\r\n", &m), 0);
    cr_assert_eq(m.exptime, 30);
    cr_assert_gt(parse1("flush_all noreply\r\n", &m), 0);
    cr_assert(m.noreply);
    cr_assert_gt(parse1("flush_all 5 noreply\r\n", &m), 0);
    cr_assert(m.noreply && m.exptime == 5);
    cr_assert_gt(parse1("version\r\n", &m), 0);
    cr_assert_eq(m.op, MC_OP_VERSION);
    cr_assert_eq(mc_cmd_route(&m), MC_ROUTE_LOCAL);
    cr_assert_gt(parse1("verbosity 1\r\n", &m), 0);
    cr_assert_eq(m.op, MC_OP_VERBOSITY);
    cr_assert_eq(m.verbosity, 1);
    cr_assert_gt(parse1("verbosity 2 noreply\r\n", &m), 0);
    cr_assert(m.noreply);
    cr_assert_gt(parse1("stats\r\n", &m), 0);
    cr_assert_eq(m.op, MC_OP_STATS);
    cr_assert_eq(m.args.len, 0);
    cr_assert_gt(parse1("stats  detail dump  \r\n", &m), 0);
    cr_assert(slice_is(m.args, "detail dump"));
    cr_assert_gt(parse1("quit\r\n", &m), 0);
    cr_assert_eq(m.op, MC_OP_QUIT);
}

/* ---- errors, worded as memcached words them ---- */

static void expect_error(const char *in, enum mc_err err, bool noreply)
{
    struct mc_cmd m;
    cr_assert_gt(parse1(in, &m), 0, "%s", in);
    cr_expect_eq(m.op, MC_OP_ERROR, "%s", in);
    cr_expect_eq(m.err, err, "%s: err %d", in, m.err);
    cr_expect_eq(m.noreply, noreply, "%s", in);
}

Test(mc_proto, unknown_and_miscounted)
{
    const char *unknown[] = {"\r\n",
                             "x\r\n",
                             "foo bar\r\n",
                             "sets k 0 0 1\r\n",
                             "get\r\n",
                             "gets\r\n",
                             "set k 0 0\r\n",
                             "set k 0 0 1 noreply extra\r\n",
                             "cas k 0 0 1\r\n",
                             "incr k\r\n",
                             "decr k 1 2 3\r\n",
                             "touch k\r\n",
                             "delete\r\n",
                             "delete k 0 noreply x\r\n",
                             "flush_all 1 2 3\r\n",
                             "verbosity\r\n",
                             "mx foo v\r\n",
                             "mg\r\n",
                             "shutdown\r\n",
                             "GET a\r\n",
                             "\r\r\n"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        expect_error(unknown[i], MC_ERR_UNKNOWN, false);
    cr_assert_str_eq(mc_err_str(MC_ERR_UNKNOWN), "ERROR");
}

Test(mc_proto, bad_command_line_format)
{
    char longkey[300];
    memset(longkey, 'k', sizeof longkey);
    char in[400];
    snprintf(in, sizeof in, "get a %.*s\r\n", 251, longkey);
    expect_error(in, MC_ERR_FORMAT, false);
    snprintf(in, sizeof in, "set %.*s 0 0 1\r\n", 251, longkey);
    expect_error(in, MC_ERR_FORMAT, false);
    snprintf(in, sizeof in, "incr %.*s 1\r\n", 251, longkey);
    expect_error(in, MC_ERR_FORMAT, false);
    snprintf(in, sizeof in, "get %.*s\r\n", 250, longkey);
    struct mc_cmd m;
    cr_assert_gt(parse1(in, &m), 0);
    cr_assert_eq(m.op, MC_OP_GET); /* 250 is fine */

    const char *bad[] = {"set k abc 0 1\r\n",
                         "set k -1 0 1\r\n",
                         "set k 4294967296 0 1\r\n",
                         "set k 0 x 1\r\n",
                         "set k 0 4294967296 1\r\n",
                         "set k 0 0 -1\r\n",
                         "set k 0 0 2147483646\r\n",
                         "set k 0 0 1x\r\n",
                         "cas k 0 0 1 -5\r\n",
                         "cas k 0 0 1 18446744073709551616\r\n",
                         "get a\tb\r\n",
                         "get a\x7f\r\n",
                         "touch k\x01 1\r\n",
                         "delete k\x1b\r\n",
                         "verbosity x\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(bad[i], MC_ERR_FORMAT, false);
    /* noreply silences errors found after it was seen. */
    expect_error("set k abc 0 1 noreply\r\n", MC_ERR_FORMAT, true);
    expect_error("verbosity noreply\r\n", MC_ERR_FORMAT, true);
}

/* Parses one command out of `in` (which must hold it whole) with lax keys (--lax-keys). */
static ssize_t parse1_lax(const char *in, struct mc_cmd *m)
{
    struct mc_parser p;
    struct mc_parser_config pc = {.lax_keys = true};
    mc_parser_init(&p, &pc);
    return mc_parse(&p, in, strlen(in), m);
}

/* --lax-keys: control bytes in keys are taken, as memcached takes them (memcaslap's keys begin
 * with 8 raw bytes); the length limit still holds, and the default still refuses them. */
Test(mc_proto, lax_keys_take_control_bytes)
{
    struct {
        const char *in;
        enum mc_op op;
        const char *key;
    } ok[] = {
        {"get \x10\x10\x10\x10\x10\x10\x10\x10IRow\r\n", MC_OP_GET,
         "\x10\x10\x10\x10\x10\x10\x10\x10IRow"},
        {"set k\x01 0 0 1\r\nx\r\n", MC_OP_SET, "k\x01"},
        {"touch k\x7f 1\r\n", MC_OP_TOUCH, "k\x7f"},
        {"delete a\tb\r\n", MC_OP_DELETE, "a\tb"},
        {"incr \x1bk 1\r\n", MC_OP_INCR, "\x1bk"},
        {"mg \x02k v\r\n", MC_OP_MG, "\x02k"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct mc_cmd m;
        cr_assert_eq(parse1_lax(ok[i].in, &m), (ssize_t)strlen(ok[i].in), "%zu", i);
        cr_assert_eq(m.op, ok[i].op, "%zu: %s", i, mc_op_name(m.op));
        if (m.op == MC_OP_GET) {
            size_t pos = 0;
            struct mc_slice k;
            cr_assert(mc_cmd_next_key(&m, &pos, &k));
            cr_assert(slice_is(k, ok[i].key));
        } else {
            cr_assert(slice_is(m.key, ok[i].key), "%zu", i);
        }
        /* The default parser refuses the same line. */
        cr_assert_gt(parse1(ok[i].in, &m), 0);
        cr_assert_eq(m.op, MC_OP_ERROR, "%zu", i);
        cr_assert_eq(m.err, MC_ERR_FORMAT, "%zu", i);
    }
    char in[300], longkey[251];
    memset(longkey, 1, sizeof longkey);
    snprintf(in, sizeof in, "get %.*s\r\n", 251, longkey);
    struct mc_cmd m;
    cr_assert_gt(parse1_lax(in, &m), 0);
    cr_assert_eq(m.op, MC_OP_ERROR); /* 251 bytes: too long, lax or not */
    cr_assert_eq(m.err, MC_ERR_FORMAT);
}

Test(mc_proto, other_client_errors)
{
    expect_error("touch k x\r\n", MC_ERR_EXPTIME, false);
    expect_error("touch k 99999999999 noreply\r\n", MC_ERR_EXPTIME, true);
    expect_error("flush_all soon\r\n", MC_ERR_EXPTIME, false);
    expect_error("flush_all noreply 5\r\n", MC_ERR_EXPTIME, false);
    expect_error("incr k -1\r\n", MC_ERR_DELTA, false);
    expect_error("incr k 18446744073709551616\r\n", MC_ERR_DELTA, false);
    expect_error("decr k abc noreply\r\n", MC_ERR_DELTA, true);
    expect_error("delete k 5\r\n", MC_ERR_DELETE_USAGE, false);
    expect_error("delete k 1 noreply\r\n", MC_ERR_DELETE_USAGE, true);
    expect_error("set k 0 0 3\r\nabcd\r\n", MC_ERR_DATA_CHUNK, false);
    expect_error("set k 0 0 3 noreply\r\nabcd\r\n", MC_ERR_DATA_CHUNK, true);
    cr_assert_str_eq(mc_err_str(MC_ERR_DELETE_USAGE),
                     "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
}

Test(mc_proto, error_transcripts)
{
    /* 32-bit signed fields wrap as in memcached: libmemcached sends a TTL of -1 that way. */
    expect_transcript("set k 0 4294967295 1\r\nx\r\nget k\r\n", "STORED\r\nEND\r\n");
    expect_transcript("set k 0 2147483648 1\r\nx\r\nget k\r\n", "STORED\r\nEND\r\n");
    expect_transcript("set k 0 0 4294967295\r\n", "CLIENT_ERROR bad command line format\r\n");
    expect_transcript("bogus\r\nset k 0 0\r\n", "ERROR\r\nERROR\r\n");
    /* A negative length swallows nothing: the data line is read as a command. */
    expect_transcript("set k 0 0 -1\r\nab\r\nget k\r\n",
                      "CLIENT_ERROR bad command line format\r\nERROR\r\nEND\r\n");
    /* Bad chunk: <bytes>+2 are consumed and the next command is read after them. */
    expect_transcript("set k 0 0 3\r\nabcde\r\nget k\r\n",
                      "CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n");
    expect_transcript("set k 0 0 3\r\nabcxyget k\r\n", "CLIENT_ERROR bad data chunk\r\nEND\r\n");
    expect_transcript("set k 0 0 1 noreply\r\nabc\r\nget k\r\n", "ERROR\r\nEND\r\n");
    expect_transcript("delete k 5\r\n",
                      "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n");
}

/* ---- too large: answered at once, data swallowed, connection usable ---- */

Test(mc_proto, too_large_swallowed_then_next_command)
{
    size_t item_max = 1024;
    size_t vlen = 4000;
    char *in = malloc(vlen + 200);
    int n = snprintf(in, 200, "set big 0 0 %zu\r\n", vlen);
    memset(in + n, 'v', vlen);
    memcpy(in + n + vlen, "\r\nget big\r\n", 11);
    size_t total = (size_t)n + vlen + 11;

    struct mc_parser p;
    struct mc_parser_config pc = {.item_max = item_max};
    mc_parser_init(&p, &pc);
    struct mc_cmd m;
    /* Only the line has arrived: the error comes now, the data is swallowed later. */
    ssize_t r = mc_parse(&p, in, (size_t)n, &m);
    cr_assert_eq(r, n);
    cr_assert_eq(m.op, MC_OP_ERROR);
    cr_assert_eq(m.err, MC_ERR_TOO_LARGE);
    cr_assert_eq(m.failed, MC_OP_SET);
    cr_assert(slice_is(m.key, "big"));
    cr_assert_eq(mc_cmd_route(&m), MC_ROUTE_KEY);
    size_t off = (size_t)n;
    while (p.swallow) {
        size_t chunk = total - off < 333 ? total - off : 333;
        r = mc_parse(&p, in + off, chunk, &m);
        cr_assert_gt(r, 0);
        cr_assert_eq(m.op, MC_OP_NONE);
        off += (size_t)r;
    }
    cr_assert_eq(off, (size_t)n + vlen + 2);
    r = mc_parse(&p, in + off, total - off, &m);
    cr_assert_eq(m.op, MC_OP_GET);

    char *got = transcript(in, total, item_max);
    cr_assert_str_eq(got, "SERVER_ERROR object too large for cache\r\nEND\r\n");
    free(got);
    free(in);
}

Test(mc_proto, too_large_set_drops_old_value_but_add_does_not)
{
    size_t item_max = 256;
    char in[2048];
    char big[400];
    memset(big, 'x', sizeof big);
    snprintf(in, sizeof in,
             "set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\n"
             "set a 0 0 400\r\n%.*s\r\nadd b 0 0 400 noreply\r\n%.*s\r\nget a b\r\n",
             400, big, 400, big);
    char *got = transcript(in, strlen(in), item_max);
    cr_assert_str_eq(got, "STORED\r\nSTORED\r\nSERVER_ERROR object too large for cache\r\n"
                          "VALUE b 0 1\r\n2\r\nEND\r\n");
    free(got);
}

Test(mc_proto, huge_length_is_swallowed_not_buffered)
{
    struct mc_parser p;
    mc_parser_init(&p, NULL);
    struct mc_cmd m;
    const char *line = "set k 0 0 2147483645\r\n";
    cr_assert_eq(mc_parse(&p, line, strlen(line), &m), (ssize_t)strlen(line));
    cr_assert_eq(m.err, MC_ERR_TOO_LARGE);
    cr_assert_eq(p.swallow, (size_t)2147483647);
    char chunk[4096];
    memset(chunk, 'z', sizeof chunk);
    cr_assert_eq(mc_parse(&p, chunk, sizeof chunk, &m), (ssize_t)sizeof chunk);
    cr_assert_eq(m.op, MC_OP_NONE);
    cr_assert_eq(p.swallow, (size_t)2147483647 - sizeof chunk);
    cr_assert_eq(mc_parse(&p, chunk, 0, &m), 0);
    cr_assert_eq(p.need, p.swallow);
}

/* ---- need-more hints and long lines ---- */

Test(mc_proto, need_more_hint)
{
    struct mc_parser p;
    mc_parser_init(&p, NULL);
    struct mc_cmd m;
    cr_assert_eq(mc_parse(&p, "get a", 5, &m), 0);
    cr_assert_eq(p.need, 0); /* waiting for the end of the line */
    mc_parser_init(&p, NULL);
    const char *in = "set k 0 0 100000\r\nabc";
    cr_assert_eq(mc_parse(&p, in, strlen(in), &m), 0);
    cr_assert_eq(p.need, 18 + 100000 + 2);
}

Test(mc_proto, long_lines)
{
    struct mc_parser p;
    struct mc_parser_config pc = {.get_line_max = 8192};
    mc_parser_init(&p, &pc);
    struct mc_cmd m;
    char *buf = malloc(10000);
    /* 2048 bytes without a newline are fine; one more closes, as memcached does. */
    memset(buf, 'a', 10000);
    memcpy(buf, "set ", 4);
    cr_assert_eq(mc_parse(&p, buf, 2048, &m), 0);
    cr_assert_eq(mc_parse(&p, buf, 2049, &m), -EMSGSIZE);
    /* Also when the newline is there already: the outcome does not depend on segmentation. */
    mc_parser_init(&p, &pc);
    memcpy(buf + 3000, "\r\n", 2);
    cr_assert_eq(mc_parse(&p, buf, 3002, &m), -EMSGSIZE);
    /* A long multi-get passes, up to get_line_max. */
    mc_parser_init(&p, &pc);
    size_t n = 0;
    n += (size_t)sprintf(buf, "   gets");
    while (n < 5000)
        n += (size_t)sprintf(buf + n, " key%zu", n);
    memcpy(buf + n, "\r\n", 2);
    cr_assert_eq(mc_parse(&p, buf, 3000, &m), 0);
    cr_assert_eq(mc_parse(&p, buf, n + 2, &m), (ssize_t)(n + 2));
    cr_assert_eq(m.op, MC_OP_GETS);
    cr_assert_gt(m.nkeys, 100);
    memset(buf, ' ', 101);
    memcpy(buf + 101, "get ", 4);
    mc_parser_init(&p, &pc);
    cr_assert_eq(mc_parse(&p, buf, 3000, &m), -EMSGSIZE); /* over 100 leading spaces */
    memcpy(buf, "get ", 4);
    memset(buf + 4, 'k', 9000);
    mc_parser_init(&p, &pc);
    cr_assert_eq(mc_parse(&p, buf, 8192, &m), 0);
    cr_assert_eq(mc_parse(&p, buf, 8193, &m), -EMSGSIZE); /* over get_line_max */
    free(buf);
}

/* ---- whole conversations ---- */

Test(mc_proto, conversation)
{
    expect_transcript("set a 5 0 3\r\nabc\r\nget a b\r\ngets a\r\n",
                      "STORED\r\nVALUE a 5 3\r\nabc\r\nEND\r\nVALUE a 5 3 1024\r\nabc\r\nEND\r\n");
    expect_transcript("add a 0 0 1\r\nx\r\nadd a 0 0 1\r\ny\r\nreplace b 0 0 1\r\nz\r\n"
                      "append a 0 0 2\r\n12\r\nprepend a 0 0 2\r\n00\r\nget a\r\n",
                      "STORED\r\nNOT_STORED\r\nNOT_STORED\r\nSTORED\r\nSTORED\r\n"
                      "VALUE a 0 5\r\n00x12\r\nEND\r\n");
    expect_transcript("set n 0 0 2\r\n99\r\nincr n 1\r\ndecr n 200\r\nincr x 1\r\n"
                      "incr n 1 noreply\r\nget n\r\n",
                      "STORED\r\n100\r\n0\r\nNOT_FOUND\r\nVALUE n 0 3\r\n1  \r\nEND\r\n");
    expect_transcript("set s 0 0 3\r\nabc\r\nincr s 1\r\n",
                      "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
    expect_transcript("set t 0 0 1\r\nx\r\ntouch t 100\r\ntouch u 1\r\ndelete t\r\ndelete t\r\n",
                      "STORED\r\nTOUCHED\r\nNOT_FOUND\r\nDELETED\r\nNOT_FOUND\r\n");
    expect_transcript("set c 0 0 1\r\nx\r\ncas c 0 0 1 1\r\ny\r\ncas c 0 0 1 1024\r\nz\r\n"
                      "cas d 0 0 1 1\r\nw\r\n",
                      "STORED\r\nEXISTS\r\nSTORED\r\nNOT_FOUND\r\n");
    expect_transcript("set f 0 0 1\r\nx\r\nflush_all\r\nget f\r\nflush_all noreply\r\n"
                      "version\r\nverbosity 1\r\nverbosity 1 noreply\r\n",
                      "STORED\r\nOK\r\nEND\r\nVERSION " MC_VERSION "\r\nOK\r\n");
    expect_transcript("set g 0 -1 1\r\nx\r\nget g\r\ngat 0 g\r\n", "STORED\r\nEND\r\nEND\r\n");
    expect_transcript("set q 0 0 1 noreply\r\nx\r\nquit\r\nget q\r\n", "");
    expect_transcript("stats reset\r\nstats nonsense\r\n", "RESET\r\nERROR\r\n");
}

Test(mc_proto, stats_transcript)
{
    const char *in = "set a 0 0 1\r\nx\r\nget a b\r\nstats\r\n";
    char *got = transcript(in, strlen(in), 0);
    cr_assert_not_null(strstr(got, "STAT cmd_get 2\r\n"));
    cr_assert_not_null(strstr(got, "STAT get_hits 1\r\n"));
    cr_assert_not_null(strstr(got, "STAT get_misses 1\r\n"));
    cr_assert_not_null(strstr(got, "STAT curr_items 1\r\n"));
    cr_assert_not_null(strstr(got, "STAT limit_maxbytes 4194304\r\n"));
    size_t n = strlen(got);
    cr_assert(n > 5 && strcmp(got + n - 5, "END\r\n") == 0);
    free(got);
}

/* ---- split anywhere: same commands, same answers ---- */

#define X10  "xxxxxxxxxx"
#define X100 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10

static const char split_input[] =
    "set a 1 0 5\r\nhe\r\nl\r\n"
    "get a nosuch\r\n"
    "gets a\r\n"
    "set big 0 0 300\r\n" X100 X100 X100 "\r\n"
    "add a 0 0 1 noreply\r\nz\r\n"
    "append a 0 0 2\r\n!!\r\n"
    "prepend a 0 0 1\r\n<\r\n"
    "replace nosuch 0 0 1\r\n.\r\n"
    "cas a 0 0 1 1\r\nq\r\n"
    "set n 0 0 2\r\n99\r\nincr n 1\r\ndecr n 7 noreply\r\nincr n abc\r\n"
    "touch a 100\r\ngat 0 a n\r\ngats 10 n\r\n"
    "delete a 0\r\ndelete a\r\ndelete a 9\r\n"
    "set bad 0 0 2\r\nabcd\r\n"
    "bogus command\r\n\r\n"
    "get \x01\r\n"
    "verbosity 1\nversion\n"
    "flush_all 0\r\nget n\r\n"
    "set last 0 0 0\r\n\r\nget last\r\n"
    "quit\r\nget never\r\n";

struct run {
    char out[8192];
    size_t outlen;
    char log[1 << 16];
    size_t loglen;
};

static void run_split(const size_t *cuts, size_t ncuts, struct run *r)
{
    struct conn *c = malloc(sizeof *c);
    conn_init(c, true, 256);
    size_t prev = 0, n = sizeof split_input - 1;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        conn_feed(c, split_input + prev, end - prev);
        prev = end;
    }
    cr_assert(c->closed);
    cr_assert_lt(c->out.len, sizeof r->out);
    memcpy(r->out, c->out.data, c->out.len);
    r->outlen = c->out.len;
    memcpy(r->log, c->log, c->loglen);
    r->loglen = c->loglen;
    conn_fini(c);
    free(c);
}

static void expect_same(const struct run *a, const struct run *b, const char *how)
{
    cr_assert_eq(a->outlen, b->outlen, "%s: answers differ", how);
    cr_assert_arr_eq(a->out, b->out, a->outlen, "%s: answers differ", how);
    cr_assert_eq(a->loglen, b->loglen, "%s: commands differ", how);
    cr_assert_arr_eq(a->log, b->log, a->loglen, "%s: commands differ", how);
}

Test(mc_proto, split_at_every_byte)
{
    struct run *whole = malloc(sizeof *whole), *split = malloc(sizeof *split);
    run_split(NULL, 0, whole);
    cr_assert_not_null(memmem(whole->out, whole->outlen, "VALUE a 1 5\r\nhe\r\nl\r\nEND\r\n", 25));
    cr_assert_not_null(memmem(whole->out, whole->outlen, "SERVER_ERROR object too large", 29));
    cr_assert_not_null(memmem(whole->out, whole->outlen, "VALUE last 0 0\r\n\r\nEND\r\n", 23));
    for (size_t i = 1; i < sizeof split_input - 1; i++) {
        size_t cut = i;
        char how[32];
        snprintf(how, sizeof how, "cut at %zu", i);
        run_split(&cut, 1, split);
        expect_same(whole, split, how);
    }
    free(whole);
    free(split);
}

Test(mc_proto, byte_by_byte_and_random_chunks)
{
    static size_t cuts[sizeof split_input];
    struct run *whole = malloc(sizeof *whole), *split = malloc(sizeof *split);
    run_split(NULL, 0, whole);
    size_t n = sizeof split_input - 1;
    for (size_t i = 0; i < n - 1; i++)
        cuts[i] = i + 1;
    run_split(cuts, n - 1, split);
    expect_same(whole, split, "byte by byte");
    unsigned seed = 12345;
    for (int round = 0; round < 50; round++) {
        size_t k = 0, at = 0;
        while (1) {
            seed = seed * 1103515245u + 12345u;
            at += 1 + (seed >> 16) % 40;
            if (at >= n)
                break;
            cuts[k++] = at;
        }
        run_split(cuts, k, split);
        expect_same(whole, split, "random chunks");
    }
    free(whole);
    free(split);
}
