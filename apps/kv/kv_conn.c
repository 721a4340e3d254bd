/*
 * A memcached connection on the core that accepted it: parse, route, answer in order.
 *
 * Each command goes where mc_cmd_route() says: local answers and commands on keys this core
 * owns run at once, into the core's `local` buffer; commands on other cores' keys go into
 * this core's batch for their owner (kv_batch.c); flush_all and stats run on every core
 * (kv_gather.c). An answer that comes later holds a reply slot begun when its command is
 * parsed (after writing `local`): libsn sends slots and writes in the order they were made.
 * A noreply command sent to another core takes no slot. The kv_conn lives until on_close has
 * run and every slot it began has ended (`open`); the slots hold the sn_conn.
 *
 * Back-pressure. Before each command (and each key of a multi-get, resumed from get_pos) the
 * connection checks its marks; over one it stops parsing and leaves the rest of the input with
 * libsn (include/sn/net.h, on_data):
 *  - output backlog plus what this call wrote behind open slots over KV_OUTPUT_HIGH, or
 *    KV_MAX_OPEN slots open: libsn pauses reading at the same marks (limits.output_high,
 *    max_open_replies) and presents the held input at half;
 *  - answers still on other cores over REMOTE_MAX bytes (their size guessed from the answers
 *    seen, plus the keys and values their batches carry): the connection stops reading
 *    (sn_conn_set_reading) until they are under half.
 * So a client that pipelines gets of big values and never reads costs about KV_OUTPUT_HIGH +
 * REMOTE_MAX + one value. One that makes the guess small, then asks for big values, can have
 * KV_MAX_OPEN answers of up to -I bytes in flight, once (owners would have to lend their items,
 * as with Seastar's foreign_ptr, to bound that).
 */
#include "kv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define REMOTE_MAX ((size_t)1 << 20)
/* The first guess of a remote answer's size: a new connection asks other cores for at most
 * REMOTE_MAX / REMOTE_EST0 answers of unknown size at a time, then follows what it sees. */
#define REMOTE_EST0    ((size_t)64 << 10)
#define REMOTE_EST_MIN ((size_t)64)
#define KEEP_BYTES     (256u << 10) /* `local` keeps no more memory than this */

/* run() and friends: go on, close after the answers so far, or stopped before the end of a
 * multi-get (the command stays unconsumed; get_pos says where to go on). */
enum { RUN_OK = 0, RUN_CLOSE = 1, RUN_STOPPED = 2 };

struct kv_conn {
    struct sn_conn *conn;
    struct kv_core *kc;
    struct mc_parser parser;
    size_t get_pos;    /* a multi-get stopped midway goes on from this key (mc_cmd_next_key) */
    size_t behind;     /* bytes written in this on_data while slots were open */
    size_t remote_in;  /* key and value bytes of the open remote ops (copies in batches) */
    size_t remote_est; /* expected bytes of one remote answer */
    uint32_t open;     /* slots begun and not ended */
    bool closed;       /* on_close has run */
    bool paused;       /* reading stopped for REMOTE_MAX */
};

/* ---- writing and the marks ---------------------------------------------------------------- */

/* The answers made here so far go out, behind the slots begun before them. */
static void flush_local(struct kv_conn *c)
{
    struct app_outbuf *b = &c->kc->local;
    if (b->len && sn_conn_write(c->conn, b->data, b->len) == 0) {
        c->kc->c.bytes_written += b->len;
        c->behind += c->open ? b->len : 0;
    }
    app_outbuf_clear(b);
    if (b->cap > KEEP_BYTES) /* one huge answer should not keep its memory */
        app_outbuf_free(b);
}

static bool remote_over(const struct kv_conn *c, unsigned shift)
{
    return c->remote_in + c->open * c->remote_est > (REMOTE_MAX >> shift);
}

/* Before a command or a key: true when no more may be taken now (see the top). */
static bool full(struct kv_conn *c)
{
    size_t out = (size_t)sn_conn_backlog(c->conn) + c->behind + c->kc->local.len;
    return out > KV_OUTPUT_HIGH || c->open >= KV_MAX_OPEN || remote_over(c, 0);
}

static void slot_end(struct kv_conn *c, struct sn_reply *r)
{
    sn_reply_end(r);
    c->open--;
    if (c->closed) {
        if (!c->open)
            free(c);
    } else if (c->paused && !remote_over(c, 1)) {
        c->paused = false;
        sn_conn_set_reading(c->conn, true); /* libsn presents the held input again */
    }
}

void kv_conn_answered(struct kv_conn *c, struct sn_reply *r, int err, size_t n, size_t carried)
{
    if (err)
        sn_reply_printf(r, "SERVER_ERROR %s\r\n",
                        err == -ENOMEM ? "out of memory" : sn_strerror(err));
    /* The guess follows the answers seen: up at once to a bigger one, down slowly. */
    size_t est = n > c->remote_est ? n : c->remote_est - (c->remote_est - n) / 16;
    c->remote_est = est > REMOTE_EST_MIN ? est : REMOTE_EST_MIN;
    c->remote_in -= carried;
    c->kc->c.bytes_written += n;
    slot_end(c, r);
}

static int begin(struct kv_conn *c, struct sn_reply **r)
{
    flush_local(c);
    if (sn_reply_begin(c->conn, r) < 0)
        return -1;
    c->open++;
    return 0;
}

/* ---- running commands --------------------------------------------------------------------- */

/* An answer made here: 0 go on, 1 close after the answers so far (quit, no memory). */
static int local_done(int rc)
{
    return rc < 0 ? RUN_CLOSE : rc;
}

/* A command (or with `key`: one key of a get) for another core, in a slot unless noreply. */
static int remote(struct kv_conn *c, unsigned owner, const struct mc_cmd *cmd,
                  const struct mc_slice *key)
{
    struct sn_reply *r = NULL;
    if (!cmd->noreply && begin(c, &r) < 0)
        return RUN_CLOSE;
    if (kv_batch_add(c->kc, owner, c, r, cmd, key) < 0) {
        if (r)
            kv_conn_answered(c, r, -ENOMEM, 0, 0);
        return RUN_CLOSE;
    }
    if (r)
        c->remote_in += (key ? key->len : cmd->key.len) + cmd->data.len;
    return RUN_OK;
}

static int run_key(struct kv_conn *c, const struct mc_cmd *cmd)
{
    unsigned owner = kv_owner(cmd->key.p, cmd->key.len);
    if (owner != c->kc->id)
        return remote(c, owner, cmd, NULL);
    return local_done(mc_exec_key(c->kc->store, cmd, &c->kc->local));
}

/*
 * The next keys of a multi-get, up to GET_WINDOW: where each starts in the command (for
 * get_pos), its owner, and for this core's keys the hash chain already loading
 * (mc_store_prefetch step 0, then step 1 once the whole window is parsed), so the store's
 * cache misses for several keys overlap instead of coming one after the other.
 */
#define GET_WINDOW 8

struct get_window {
    struct mc_slice key[GET_WINDOW];
    unsigned owner[GET_WINDOW];
    size_t at[GET_WINDOW];
    unsigned n;
};

static void window_fill(struct kv_conn *c, const struct mc_cmd *cmd, size_t *pos,
                        struct get_window *w)
{
    struct mc_store *s = c->kc->store;
    w->n = 0;
    for (size_t at = *pos; w->n < GET_WINDOW && mc_cmd_next_key(cmd, pos, &w->key[w->n]);
         at = *pos) {
        struct mc_slice k = w->key[w->n];
        w->owner[w->n] = kv_owner(k.p, k.len);
        w->at[w->n++] = at;
        if (w->owner[w->n - 1] == c->kc->id)
            mc_store_prefetch(s, k.p, k.len, 0);
    }
    for (unsigned i = 0; i < w->n; i++)
        if (w->owner[i] == c->kc->id)
            mc_store_prefetch(s, w->key[i].p, w->key[i].len, 1);
}

/*
 * get/gets/gat/gats: every key on its owner, the answers in key order, then END. Stops between
 * two keys when the connection is full (RUN_STOPPED, get_pos set); at least one key is taken
 * per call, so a presentation always makes progress.
 */
static int run_keys(struct kv_conn *c, const struct mc_cmd *cmd)
{
    struct get_window w;
    size_t pos = c->get_pos;
    bool first = true;
    c->get_pos = 0;
    for (window_fill(c, cmd, &pos, &w); w.n; window_fill(c, cmd, &pos, &w)) {
        for (unsigned i = 0; i < w.n; i++, first = false) {
            if (!first && full(c)) {
                c->get_pos = w.at[i];
                return RUN_STOPPED;
            }
            int rc = w.owner[i] == c->kc->id
                         ? mc_exec_get_key(c->kc->store, cmd, w.key[i], &c->kc->local)
                         : remote(c, w.owner[i], cmd, &w.key[i]);
            if (rc)
                return local_done(rc);
        }
    }
    return local_done(mc_reply_end(&c->kc->local));
}

static void gather_answered(void *arg, struct sn_reply *r, const struct app_outbuf *out)
{
    struct kv_conn *c = arg;
    if (sn_reply_write(r, out->data, out->len) == 0)
        c->kc->c.bytes_written += out->len;
    slot_end(c, r);
}

/* flush_all and stats: every core, this one first and inline (see kv.h, "Ordering"). */
static int run_all(struct kv_conn *c, const struct mc_cmd *cmd)
{
    enum kv_gather_kind kind = KV_G_FLUSH;
    if (cmd->op == MC_OP_STATS) {
        if (cmd->args.len == 5 && memcmp(cmd->args.p, "reset", 5) == 0)
            kind = KV_G_RESET;
        else if (cmd->args.len == 0)
            kind = KV_G_STATS;
        else
            return local_done(mc_reply_error(&c->kc->local, MC_ERR_UNKNOWN));
    }
    struct sn_reply *r;
    if (begin(c, &r) < 0)
        return RUN_CLOSE;
    if (kv_gather_start(kind, cmd->exptime, cmd->noreply, gather_answered, c, r) < 0) {
        kv_conn_answered(c, r, -ENOMEM, 0, 0);
        return RUN_CLOSE;
    }
    return RUN_OK;
}

static int run(struct kv_conn *c, const struct mc_cmd *cmd)
{
    switch (mc_cmd_route(cmd)) {
    case MC_ROUTE_KEY: return run_key(c, cmd);
    case MC_ROUTE_KEYS: return run_keys(c, cmd);
    case MC_ROUTE_ALL: return run_all(c, cmd);
    case MC_ROUTE_LOCAL: break;
    }
    return local_done(mc_exec_local(cmd, &c->kc->local));
}

/* ---- connection callbacks ----------------------------------------------------------------- */

static size_t kv_on_data(struct sn_conn *conn, void *arg, const char *data, size_t len)
{
    struct kv_conn *c = arg;
    if (!c)
        return len;
    size_t used = 0;
    c->behind = 0;
    while (used < len) {
        size_t avail = len - used;
        if (c->parser.need && avail < c->parser.need)
            break; /* a data block still arriving */
        /* Full: the rest stays with libsn (see the top). A multi-get stopped midway was
         * checked by run_keys already. */
        if (!c->get_pos && full(c))
            break;
        struct mc_cmd cmd;
        ssize_t n = mc_parse(&c->parser, data + used, avail, &cmd);
        if (n == 0)
            break;
        int rc = n < 0 ? RUN_CLOSE : run(c, &cmd);
        if (rc == RUN_STOPPED)
            break; /* not consumed: parsed again from its start when presented again */
        /* A line too long closes the connection without an answer, as in memcached. */
        if (rc != RUN_OK) {
            used = len;
            flush_local(c);
            sn_ignore(sn_conn_close(conn)); /* after the answers still in slots */
            break;
        }
        used += (size_t)n;
    }
    c->kc->c.bytes_read += used;
    flush_local(c);
    if (!c->paused && remote_over(c, 0)) {
        c->paused = true;
        sn_conn_set_reading(conn, false);
    }
    return used;
}

/* EOF, or a connection refused at accept: close once the answers still in slots are out. */
static void kv_on_eof(struct sn_conn *conn, void *arg)
{
    (void)arg;
    sn_ignore(sn_conn_close(conn));
}

static void kv_on_close(struct sn_conn *conn, void *arg, int err)
{
    (void)conn, (void)err;
    struct kv_conn *c = arg;
    if (!c)
        return;
    c->closed = true;
    c->kc->c.curr_conns--;
    atomic_fetch_sub_explicit(&kv_srv.open_conns, 1, memory_order_relaxed);
    if (!c->open)
        free(c);
}

const struct sn_conn_ops kv_conn_ops = {
    .on_data = kv_on_data,
    .on_eof = kv_on_eof,
    .on_close = kv_on_close,
};

static const char too_many[] = "ERROR Too many open connections\r\n";

void *kv_conn_accept(struct sn_conn *conn, void *arg)
{
    (void)arg;
    struct kv_core *kc = kv_core_self();
    unsigned n = atomic_fetch_add_explicit(&kv_srv.open_conns, 1, memory_order_relaxed) + 1;
    struct kv_conn *c = NULL;
    if (kv_srv.opt.max_conns && n > kv_srv.opt.max_conns) {
        /* memcached's answer with maxconns_fast: tell the client, then close. */
        kc->c.rejected_conns++;
        sn_conn_write(conn, too_many, sizeof too_many - 1);
    } else {
        c = calloc(1, sizeof *c);
    }
    if (!c) {
        atomic_fetch_sub_explicit(&kv_srv.open_conns, 1, memory_order_relaxed);
        sn_ignore(sn_conn_close(conn));
        return NULL;
    }
    *c = (struct kv_conn){.conn = conn, .kc = kc, .remote_est = REMOTE_EST0};
    mc_parser_init(&c->parser, &kv_srv.pcfg);
    kc->c.curr_conns++;
    kc->c.total_conns++;
    return c;
}
