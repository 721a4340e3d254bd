/*
 * A memcached connection on the core that accepted it: parse, route, answer in order.
 *
 * Each command goes where mc_cmd_route() says: local answers and commands on keys this core
 * owns run at once on this core's store; commands on other cores' keys go into this core's
 * batch for their owner (kv_batch.c); flush_all and stats run on every core (kv_gather.c).
 *
 * Order. The answers wait in a FIFO of segments: LOCAL (bytes already made, in `pend`), OP
 * (the answer of one op of a batch still in flight) or GATHER. After each burst of input and
 * each time a batch or gather comes back, the connection writes segments from the head while
 * the head is ready, so answers leave in request order while later requests keep being
 * parsed and run (a pipelined client never waits for a round trip it does not need).
 * A command with noreply that goes to another core leaves no segment: nothing to order.
 *
 * Lifetime. on_data's bytes are libsn's and valid only during the call: commands run locally
 * read them in place, remote ones are copied into their batch. A kv_conn lives until libsn
 * has closed the connection (on_close) and no batch or gather still refers to it (`refs`).
 *
 * Back-pressure. Before each command (and each key of a multi-get) the connection checks two
 * bounds, and when one is passed it stops parsing and leaves the rest of the input with libsn,
 * which holds it and presents it again later (include/sn/net.h, on_data):
 *  - the output backlog over KV_OUTPUT_HIGH: the listener sets limits.output_high to the same
 *    value, so libsn has paused reading at that very mark and presents the held input again
 *    once half of the backlog has left (that return of the held input is the resume, so kv
 *    needs no on_drain, which is for output that no input drives);
 *  - answers waiting here over PEND_MAX bytes (made here behind a slower one, or estimated for
 *    commands still on other cores, plus the keys and values those carry), or too many of
 *    them: the connection stops reading itself (sn_conn_set_reading) and resumes when the
 *    replies that came back have been written and less than half is left.
 * A multi-get stopped between two keys is taken up again at the next key when presented again
 * (get_pos). So a client that pipelines gets of big values and never reads costs about
 * KV_OUTPUT_HIGH + PEND_MAX + one value, not one copy of every answer; and SIGTERM finds at
 * most that much to flush.
 *
 * Limits of the estimate: the size of an answer still on another core is not known, so it is
 * guessed from the answers seen on this connection (remote_written). A client that makes the
 * guess small with small values and then asks for big ones can have up to REMOTE_MAX answers
 * of up to -I bytes each in flight at once, once. Commands with noreply sent to another core
 * leave no segment and are not counted (their batches are sent at BATCH_MAX_BYTES). Both
 * would need the owner to lend its items instead of copying them (Seastar's foreign_ptr).
 *
 * Copies. A local get of a value of at least DIRECT_MIN bytes, with nothing waiting before it,
 * is written from the item straight into libsn's output (one copy, not two through `pend`);
 * a big answer from another core is queued by reference to the batch's buffer (write_ref), so
 * it is copied once, by the owner.
 */
#include "kv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stop marks of the answers waiting here; reading resumes below half of each. */
#define SEGS_MAX        4096u
#define REMOTE_MAX      512u         /* commands on other cores awaiting their answer */
#define PEND_MAX        ((size_t)1 << 20)
/*
 * The first guess of a remote answer's size, then what is seen (remote_written). High at
 * first, so a new connection asks other cores for at most PEND_MAX / REMOTE_EST0 answers of
 * unknown size at a time; it falls within ~100 answers when they are small.
 */
#define REMOTE_EST0     ((size_t)64 << 10)
#define REMOTE_EST_MIN  ((size_t)64)
#define DIRECT_MIN      4096         /* local values this big skip `pend` */
#define REF_MIN         (16u << 10)  /* remote answers this big are sent by reference */
#define COMPACT_BYTES   (256u << 10)
#define KEEP_BYTES      (256u << 10)

/* run() and friends: go on, close after the answers so far, or stopped before the end of a
 * multi-get (the command stays unconsumed; get_pos says where to go on). */
enum { RUN_OK = 0, RUN_CLOSE = 1, RUN_STOPPED = 2 };

enum seg_kind { SEG_LOCAL, SEG_OP, SEG_GATHER };

struct kv_seg {
    enum seg_kind kind;
    uint32_t op;      /* SEG_OP: index in the batch */
    size_t off, len;  /* SEG_LOCAL: bytes of pend; SEG_OP: len = key and value bytes it carries */
    void *p;          /* SEG_OP: the batch; SEG_GATHER: the gather */
};

struct kv_conn {
    struct sn_conn *conn; /* NULL once closed */
    struct kv_core *kc;
    struct mc_parser parser;
    struct app_outbuf pend; /* answers made here, waiting behind their segments */
    size_t pend_head;       /* bytes of pend already written */
    struct kv_seg *seg;     /* ring of segments: seg[shead .. shead+slen) mod scap */
    uint32_t shead, slen, scap;
    unsigned refs;        /* batches and gathers that will call back */
    uint32_t nremote;     /* SEG_OP segments not written yet */
    size_t remote_in;     /* key and value bytes those carry (copies in their batches) */
    size_t remote_est;    /* expected bytes of one remote answer (see remote_written) */
    size_t get_pos;       /* a multi-get stopped midway goes on from this key (mc_cmd_next_key) */
    bool in_data;         /* inside on_data: callbacks must not write now */
    bool quit;            /* no more input: close once every answer is out */
    bool closed;          /* on_close has run */
    bool paused;          /* reading stopped by our back-pressure */
};

/* ---- the segment FIFO --------------------------------------------------------------------- */

static struct kv_seg *seg_push(struct kv_conn *c)
{
    if (c->slen == c->scap) {
        uint32_t cap = c->scap ? c->scap * 2 : 16;
        struct kv_seg *n = malloc(cap * sizeof *n);
        if (!n)
            return NULL;
        for (uint32_t i = 0; i < c->slen; i++)
            n[i] = c->seg[(c->shead + i) & (c->scap - 1)];
        free(c->seg);
        c->seg = n;
        c->scap = cap;
        c->shead = 0;
    }
    struct kv_seg *s = &c->seg[(c->shead + c->slen) & (c->scap - 1)];
    c->slen++;
    return s;
}

static struct kv_seg *seg_tail(struct kv_conn *c)
{
    return c->slen ? &c->seg[(c->shead + c->slen - 1) & (c->scap - 1)] : NULL;
}

/* The bytes appended to pend since `start` become (part of) a LOCAL segment. */
static int seg_local(struct kv_conn *c, size_t start)
{
    size_t len = c->pend.len - start;
    if (!len)
        return 0;
    struct kv_seg *t = seg_tail(c);
    if (t && t->kind == SEG_LOCAL && t->off + t->len == start) {
        t->len += len;
        return 0;
    }
    if (!(t = seg_push(c)))
        return -ENOMEM;
    *t = (struct kv_seg){.kind = SEG_LOCAL, .off = start, .len = len};
    return 0;
}

static int seg_remote(struct kv_conn *c, enum seg_kind kind, void *p, uint32_t op, size_t in)
{
    struct kv_seg *t = seg_push(c);
    if (!t)
        return -ENOMEM;
    *t = (struct kv_seg){.kind = kind, .op = op, .p = p, .len = in};
    if (kind == SEG_OP) {
        c->nremote++;
        c->remote_in += in;
    }
    return 0;
}

/* ---- writing ------------------------------------------------------------------------------ */

static void out(struct kv_conn *c, const char *p, size_t n)
{
    if (n && c->conn && sn_conn_write(c->conn, p, n) == 0)
        c->kc->c.bytes_written += n;
}

static void out_error(struct kv_conn *c, int err)
{
    char line[96];
    int n = snprintf(line, sizeof line, "SERVER_ERROR %s\r\n",
                     err == -ENOMEM ? "out of memory" : sn_strerror(err));
    out(c, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void batch_ref_release(void *arg)
{
    kv_batch_release(arg);
}

/*
 * Queues a remote answer by reference to its batch (no second copy) when it is big and makes
 * up at least half of the batch's answers, so that keeping the batch until the bytes have
 * left holds little besides them. False: copy it.
 */
static bool out_batch_ref(struct kv_conn *c, struct kv_batch *b, const char *p, size_t n)
{
    if (n < REF_MIN || n * 2 < b->out.len || !c->conn)
        return false;
    if (sn_conn_write_ref(c->conn, p, n, batch_ref_release, b) < 0)
        return false;
    c->kc->c.bytes_written += n;
    return true;
}

/*
 * A remote answer of n bytes was written: one fewer to wait for. The estimate follows the
 * answers seen: up at once to a bigger one, down slowly, so a run of big values on other
 * cores soon limits how many are asked for at a time.
 */
static void remote_written(struct kv_conn *c, const struct kv_seg *s, size_t n)
{
    c->nremote--;
    c->remote_in -= s->len;
    if (n > c->remote_est)
        c->remote_est = n;
    else
        c->remote_est -= (c->remote_est - n) / 16;
    if (c->remote_est < REMOTE_EST_MIN)
        c->remote_est = REMOTE_EST_MIN;
}

/* Moves the unwritten part of pend to its front (rare: only a long-blocked head). */
static void compact(struct kv_conn *c)
{
    size_t d = c->pend_head;
    memmove(c->pend.data, c->pend.data + d, c->pend.len - d);
    c->pend.len -= d;
    c->pend_head = 0;
    for (uint32_t i = 0; i < c->slen; i++) {
        struct kv_seg *s = &c->seg[(c->shead + i) & (c->scap - 1)];
        if (s->kind == SEG_LOCAL)
            s->off -= d;
    }
}

/* Writes the head segment if it is ready; false when it is still in flight. */
static bool write_head(struct kv_conn *c, struct kv_seg *s)
{
    const char *p;
    size_t n;
    switch (s->kind) {
    case SEG_LOCAL:
        out(c, c->pend.data + s->off, s->len);
        c->pend_head = s->off + s->len;
        return true;
    case SEG_OP: {
        struct kv_batch *b = s->p;
        if (!b->done)
            return false;
        int err = kv_batch_answer(b, s->op, &p, &n);
        if (err)
            out_error(c, err);
        else if (!out_batch_ref(c, b, p, n))
            out(c, p, n);
        else
            b = NULL; /* the op's reference now belongs to the queued bytes */
        if (b)
            kv_batch_release(b);
        remote_written(c, s, err ? 0 : n);
        return true;
    }
    case SEG_GATHER: {
        struct kv_gather *g = s->p;
        if (!g->done)
            return false;
        out(c, g->out.data, g->out.len);
        kv_gather_release(g);
        return true;
    }
    }
    return true;
}

static size_t pend_bytes(const struct kv_conn *c)
{
    return c->pend.len - c->pend_head;
}

/* Writes every ready answer from the head. */
static void write_ready(struct kv_conn *c)
{
    while (c->slen && write_head(c, &c->seg[c->shead])) {
        c->shead = (c->shead + 1) & (c->scap - 1);
        c->slen--;
    }
    if (!c->slen) {
        app_outbuf_clear(&c->pend);
        c->pend_head = 0;
        /* One huge answer should not keep its memory for the connection's lifetime. */
        if (c->pend.cap > KEEP_BYTES)
            app_outbuf_free(&c->pend);
    } else if (c->pend_head > COMPACT_BYTES && c->pend_head * 2 > c->pend.len) {
        compact(c);
    }
}

/* Answers waiting here over the stop marks (shift 0) or over half of them (shift 1). */
static bool waiting_over(const struct kv_conn *c, unsigned shift)
{
    size_t bytes = pend_bytes(c) + c->remote_in + (size_t)c->nremote * c->remote_est;
    return c->slen > (SEGS_MAX >> shift) || c->nremote > (REMOTE_MAX >> shift) ||
           bytes > (PEND_MAX >> shift);
}

/*
 * Before a command or a key: true when no more may be taken now. Output over KV_OUTPUT_HIGH:
 * libsn has paused reading at this mark (see the top). Too much waiting here: write what is
 * ready first, it may be enough.
 */
static bool full(struct kv_conn *c)
{
    if (!c->conn || (size_t)sn_conn_backlog(c->conn) > KV_OUTPUT_HIGH)
        return true;
    if (!waiting_over(c, 0))
        return false;
    write_ready(c);
    return waiting_over(c, 0) || (size_t)sn_conn_backlog(c->conn) > KV_OUTPUT_HIGH;
}

/* Writes every ready answer; closes after a quit once all are out; pauses or resumes reading. */
static void drain(struct kv_conn *c)
{
    write_ready(c);
    if (!c->conn)
        return;
    if (c->quit && !c->slen) {
        sn_ignore(sn_conn_close(c->conn));
    } else if (!c->paused && waiting_over(c, 0)) {
        c->paused = true;
        sn_conn_set_reading(c->conn, false);
    } else if (c->paused && !waiting_over(c, 1)) {
        c->paused = false;
        sn_conn_set_reading(c->conn, true); /* libsn presents the held input again */
    }
}

/* ---- running commands --------------------------------------------------------------------- */

/* Result of running one command: 0 go on, 1 close after the answers so far (quit, no memory). */
static int done_local(struct kv_conn *c, int rc, size_t start)
{
    if (rc < 0 || seg_local(c, start) < 0)
        return 1;
    return rc; /* 1 for quit */
}

static int run_key(struct kv_conn *c, const struct mc_cmd *cmd)
{
    struct kv_core *kc = c->kc;
    unsigned owner = kv_owner(cmd->key.p, cmd->key.len);
    if (owner == kc->id) {
        size_t start = c->pend.len;
        return done_local(c, mc_exec_key(kc->store, cmd, &c->pend), start);
    }
    struct kv_batch *b;
    struct kv_conn *waiter = cmd->noreply ? NULL : c;
    int i = kv_batch_add(kc, owner, waiter, cmd, NULL, &b);
    if (i < 0)
        return 1;
    if (waiter && seg_remote(c, SEG_OP, b, (uint32_t)i, cmd->key.len + cmd->data.len) < 0) {
        kv_batch_release(b);
        return 1;
    }
    return 0;
}

/*
 * A local get hit. A big value goes from the item straight to libsn when nothing waits before
 * it (after writing what is ready): one copy instead of two.
 */
static int local_get(struct kv_conn *c, const struct mc_cmd *cmd, struct mc_slice key)
{
    const struct mc_item *it = mc_exec_get_item(c->kc->store, cmd, key);
    if (!it)
        return RUN_OK;
    bool cas = cmd->op == MC_OP_GETS || cmd->op == MC_OP_GATS;
    if (it->nbytes >= DIRECT_MIN && c->conn) {
        write_ready(c);
        if (!c->slen) {
            char hdr[MC_VALUE_HDR_MAX];
            size_t n = mc_fmt_value_hdr(hdr, mc_item_key(it), it->nkey, it->flags, it->nbytes,
                                        cas, it->cas);
            out(c, hdr, n);
            out(c, mc_item_value(it), (size_t)it->nbytes + 2);
            return RUN_OK;
        }
    }
    size_t start = c->pend.len;
    return done_local(c, mc_reply_item(&c->pend, it, cas), start);
}

/*
 * get/gets/gat/gats: every key on its owner, the answers in key order, then END. Stops between
 * two keys when the connection is full (RUN_STOPPED, get_pos set); at least one key is taken
 * per call, so a presentation always makes progress.
 */
static int run_keys(struct kv_conn *c, const struct mc_cmd *cmd)
{
    struct kv_core *kc = c->kc;
    size_t pos = c->get_pos;
    struct mc_slice key;
    bool first = true;
    c->get_pos = 0;
    for (size_t at = pos; mc_cmd_next_key(cmd, &pos, &key); at = pos, first = false) {
        if (!first && full(c)) {
            c->get_pos = at;
            return RUN_STOPPED;
        }
        unsigned owner = kv_owner(key.p, key.len);
        if (owner == kc->id) {
            if (local_get(c, cmd, key))
                return RUN_CLOSE;
            continue;
        }
        struct kv_batch *b;
        int i = kv_batch_add(kc, owner, c, cmd, &key, &b);
        if (i < 0)
            return RUN_CLOSE;
        if (seg_remote(c, SEG_OP, b, (uint32_t)i, key.len) < 0) {
            kv_batch_release(b);
            return RUN_CLOSE;
        }
    }
    size_t start = c->pend.len;
    return done_local(c, mc_reply_end(&c->pend), start);
}

static void gather_done(struct kv_gather *g, void *arg)
{
    (void)g;
    kv_conn_batch_done(arg);
}

static bool args_are(const struct mc_cmd *cmd, const char *word)
{
    size_t n = strlen(word);
    return cmd->args.len == n && memcmp(cmd->args.p, word, n) == 0;
}

/* flush_all and stats: every core, this one first and inline (see kv.h, "Ordering"). */
static int run_all(struct kv_conn *c, const struct mc_cmd *cmd)
{
    enum kv_gather_kind kind = KV_G_FLUSH;
    if (cmd->op == MC_OP_STATS) {
        if (args_are(cmd, "reset")) {
            kind = KV_G_RESET;
        } else if (cmd->args.len == 0) {
            kind = KV_G_STATS;
        } else {
            size_t start = c->pend.len;
            return done_local(c, mc_reply_error(&c->pend, MC_ERR_UNKNOWN), start);
        }
    }
    struct kv_gather *g = kv_gather_start(kind, cmd->exptime, cmd->noreply, gather_done, c);
    if (!g)
        return 1;
    if (!g->done)
        c->refs++; /* gather_done will drop it */
    if (seg_remote(c, SEG_GATHER, g, 0, 0) < 0) {
        kv_gather_release(g);
        return 1;
    }
    return 0;
}

static int run(struct kv_conn *c, const struct mc_cmd *cmd)
{
    switch (mc_cmd_route(cmd)) {
    case MC_ROUTE_KEY: return run_key(c, cmd);
    case MC_ROUTE_KEYS: return run_keys(c, cmd);
    case MC_ROUTE_ALL: return run_all(c, cmd);
    case MC_ROUTE_LOCAL: break;
    }
    size_t start = c->pend.len;
    return done_local(c, mc_exec_local(cmd, &c->pend), start);
}

/* ---- connection callbacks ----------------------------------------------------------------- */

static size_t kv_on_data(struct sn_conn *conn, void *arg, const char *data, size_t len)
{
    (void)conn;
    struct kv_conn *c = arg;
    if (!c || c->quit)
        return len;
    c->in_data = true;
    size_t used = 0;
    while (used < len) {
        size_t avail = len - used;
        if (c->parser.need && avail < c->parser.need)
            break; /* a data block still arriving */
        /* Full: the rest stays with libsn until the answers have drained (see the top). A
         * multi-get stopped midway was checked by run_keys already. */
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
            c->quit = true;
            used = len;
            break;
        }
        used += (size_t)n;
    }
    c->kc->c.bytes_read += used;
    c->in_data = false;
    drain(c);
    return used;
}

static void kv_on_eof(struct sn_conn *conn, void *arg)
{
    struct kv_conn *c = arg;
    if (!c) {
        sn_ignore(sn_conn_close(conn));
        return;
    }
    c->quit = true;
    drain(c);
}

static void conn_free(struct kv_conn *c)
{
    app_outbuf_free(&c->pend);
    free(c->seg);
    free(c);
}

static void kv_on_close(struct sn_conn *conn, void *arg, int err)
{
    (void)conn;
    (void)err;
    struct kv_conn *c = arg;
    if (!c)
        return;
    c->closed = true;
    c->conn = NULL;
    c->kc->c.curr_conns--;
    atomic_fetch_sub_explicit(&kv_srv.open_conns, 1, memory_order_relaxed);
    /* Answers that can no longer be sent: let go of what they hold. */
    for (; c->slen; c->slen--, c->shead = (c->shead + 1) & (c->scap - 1)) {
        struct kv_seg *s = &c->seg[c->shead];
        if (s->kind == SEG_OP)
            kv_batch_release(s->p);
        else if (s->kind == SEG_GATHER)
            kv_gather_release(s->p);
    }
    if (!c->refs)
        conn_free(c);
}

const struct sn_conn_ops kv_conn_ops = {
    .on_data = kv_on_data,
    .on_eof = kv_on_eof,
    .on_close = kv_on_close,
};

void kv_conn_hold(struct kv_conn *c)
{
    c->refs++;
}

void kv_conn_batch_done(struct kv_conn *c)
{
    c->refs--;
    if (c->closed) {
        if (!c->refs)
            conn_free(c);
        return;
    }
    /* Inside on_data (a reply that came back inline): on_data drains when it ends. */
    if (!c->in_data)
        drain(c);
}

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
    c->conn = conn;
    c->kc = kc;
    c->remote_est = REMOTE_EST0;
    mc_parser_init(&c->parser, &kv_srv.pcfg);
    app_outbuf_init(&c->pend);
    kc->c.curr_conns++;
    kc->c.total_conns++;
    return c;
}
