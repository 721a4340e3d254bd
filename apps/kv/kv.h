/*
 * The sharded memcached-compatible server (apps/kv): shared state and the pieces that the
 * connection code (kv_conn.c), the cross-core batches (kv_batch.c), the all-core commands
 * (kv_gather.c), the metrics page (kv_metrics.c) and main.c use.
 *
 * Sharding. Every key is owned by one core: sn_partition(kv_srv.part, key) picks it. A
 * connection lives on one core (the one that accepted it); it parses its requests there, runs
 * the commands on keys its core owns inline on the core's store, and sends the others to their
 * owner in a batch (kv_batch.c). Replies leave in request order: an answer made at once is
 * written at once, an answer still on another core holds a reply slot (include/sn/reply.h)
 * that libsn keeps in order with everything written before and after it.
 *
 * Ordering. Commands on one key from one connection run in request order: a key always has
 * the same owner, inline commands run at once in order, and a core's batches to another core
 * run there in the order they were sent (libsn keeps calls from one core to another in order).
 * flush_all runs on the own core inline and is sent to the others after every batch queued so
 * far, so a command sent after it sees it on every core.
 *
 * Threads: the global kv_srv is written before sn_run and by core 0 before the listener
 * starts; after that it is read-only. A struct kv_core is touched only by its own core, except
 * by the main thread after sn_run has returned (to free it).
 */
#ifndef KV_H
#define KV_H

#include <sn.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "mc_exec.h"

#define KV_DEFAULT_PORT     11211
#define KV_DEFAULT_MAXCONNS 1024

/*
 * Output backlog above which a connection takes no more commands (kv_conn.c, "Back-pressure");
 * the listener's limits.output_high is set to the same value, so libsn pauses reading at the
 * same mark and presents the held input again once half of it has left. Keep them equal.
 */
#define KV_OUTPUT_HIGH ((size_t)1 << 20)
/* Reply slots (answers still on other cores) a connection may hold: the listener's
 * limits.max_open_replies, and kv_conn.c stops parsing at the same mark. */
#define KV_MAX_OPEN 1024u
/*
 * Unconsumed input a connection may hold beyond one data block or get line. While reading is
 * paused libsn also holds what was already in flight (up to its 128 x 16 KiB receive ring per
 * core) and then applies input_max to what on_data leaves, which for a client that pipelined
 * far ahead can be much; this keeps such a client from being cut with -EMSGSIZE.
 */
#define KV_INPUT_SLACK ((size_t)4 << 20)

/* Command-line settings (main.c fills them before sn_run). */
struct kv_opts {
    unsigned port;
    const char *host;
    const char *partitioner;  /* sn_partition_from_string spec without N */
    size_t mem_total;         /* -m, bytes over all cores */
    size_t item_max;          /* -I */
    unsigned max_conns;       /* -c, whole server */
    unsigned metrics_port;    /* 0: no metrics listener */
    unsigned idle_ms;         /* --idle-ms: close connections idle this long; 0: never */
    const char *snapshot_dir; /* --snapshot DIR: NULL when not given */
    unsigned snapshot_every;  /* --snapshot-every S: seconds; 0: only at SIGTERM/SIGINT */
    bool snapshot_strict;     /* --snapshot-strict: refuse to start with a bad snapshot */
    bool lax_keys;            /* --lax-keys: keys may hold control bytes, as memcached */
    bool quiet;
};

/* Counters of one core; plain fields, touched by their core only. */
struct kv_core_counters {
    uint64_t curr_conns; /* gauge */
    uint64_t total_conns;
    uint64_t rejected_conns;
    uint64_t bytes_read;
    uint64_t bytes_written;
    uint64_t remote_ops;     /* commands (or get keys) this core sent to their owner */
    uint64_t remote_batches; /* batches it sent */
    uint64_t served_ops;     /* commands (or get keys) it ran for other cores */
};

struct kv_batch;

/* One core's state. */
struct kv_core {
    unsigned id;
    struct mc_store *store;
    struct kv_batch **outbox; /* [ncores]: the batch being filled for each owner, or NULL */
    bool flush_queued;
    struct sn_task flush_task; /* sends the outbox at the next run of the task queue */
    struct app_outbuf local;   /* answers made here during one on_data (kv_conn.c) */
    struct kv_batch *spare;    /* finished batches kept for reuse (their buffers stay), a stack */
    unsigned nspare;           /* how many (at most KV_BATCH_SPARES) */
    struct kv_core_counters c;
};

/* The server: one per process. */
struct kv_server {
    struct kv_opts opt;
    unsigned ncores;
    struct sn_partition *part;
    struct kv_core **cores; /* [ncores] */
    struct mc_parser_config pcfg;
    time_t started;
    _Atomic unsigned open_conns; /* for -c: the only counter shared between cores */
    struct sn_listener *listener;
    struct sn_listener *mlistener;
};

extern struct kv_server kv_srv;

static inline struct kv_core *kv_core_self(void)
{
    return kv_srv.cores[sn_core_id()];
}

static inline unsigned kv_owner(const char *key, size_t len)
{
    return kv_srv.ncores == 1 ? 0 : sn_partition(kv_srv.part, key, len);
}

/* ---- kv_core.c ---------------------------------------------------------------------------- */

/*
 * Builds kv_srv for the running reactor (on core 0): every core's store (made on its core;
 * main.c made kv_srv.part before the run). The future settles when all exist.
 */
struct sn_future *kv_server_start(void);

/* Frees what kv_server_start and main made. Main thread, after sn_app_run returned. */
void kv_server_free(void);

/* ---- kv_batch.c: commands sent to their owner core ---------------------------------------- */

struct kv_conn;

/* The op of a batch: one single-key command, or one key of a get-family command. */
struct kv_op {
    struct mc_cmd cmd;      /* slices point into the batch's `in` once it is sent */
    uint32_t end;           /* the owner: end of this op's answer in `out` */
    int err;                /* the owner: 0 or -ENOMEM */
    struct sn_reply *reply; /* the slot the answer goes into; NULL for noreply */
    struct kv_conn *conn;   /* told when the answer is in (kv_conn_answered) */
};

struct kv_batch {
    unsigned to;
    int err;               /* the call failed (e.g. -ECANCELED at shutdown): no answers */
    unsigned refs;         /* 1 until the answers are written, + 1 per answer sent by reference */
    struct app_outbuf ops; /* struct kv_op[nops] */
    uint32_t nops;
    struct app_outbuf in;        /* copies of the keys and values: the batch owns them */
    struct app_outbuf out;       /* the answers, written by the owner */
    struct kv_batch *next_spare; /* the sender's spare stack (kv_core.spare) */
};

/*
 * Queues `cmd` (a single-key command, or with `key` set: one key of a get) for the core that
 * owns the key, copying the key and the value into the batch (the caller's buffer may go away
 * once this returns). When the answer is back it is written into `reply` (NULL: noreply,
 * nothing is written), the slot is ended, and kv_conn_answered(conn, ...) runs. 0, or -ENOMEM
 * (nothing queued, the slot untouched).
 */
int kv_batch_add(struct kv_core *kc, unsigned owner, struct kv_conn *conn, struct sn_reply *reply,
                 const struct mc_cmd *cmd, const struct mc_slice *key);

/* Sends every batch of the calling core's outbox now. */
void kv_batch_flush(struct kv_core *kc);

/* Frees the spare batches and any batch left in the outbox (main thread, after sn_run). */
void kv_batch_cache_free(struct kv_core *kc);

/* ---- kv_gather.c: commands that run on every core ----------------------------------------- */

enum kv_gather_kind { KV_G_STATS, KV_G_RESET, KV_G_FLUSH, KV_G_METRICS };

struct kv_core_snap {
    struct mc_store_stats st;
    struct kv_core_counters c;
};

/* The answer of a gather (memcached text, or the Prometheus page), valid during the call. */
typedef void (*kv_gather_done_fn)(void *arg, struct sn_reply *reply, const struct app_outbuf *out);

/*
 * Runs `kind` on the calling core now, inline (so what this connection runs next sees it),
 * and on every other core after the calling core's outbox (so batches queued before it run
 * before it). When all have answered, done(arg, reply, answer) runs on the calling core
 * (inside this call when there is no other core). 0, or -ENOMEM (done is not called).
 */
int kv_gather_start(enum kv_gather_kind kind, int32_t exptime, bool noreply, kv_gather_done_fn done,
                    void *arg, struct sn_reply *reply);

/* ---- kv_conn.c: memcached connections ----------------------------------------------------- */

extern const struct sn_conn_ops kv_conn_ops;

/* on_accept of the memcached listener. */
void *kv_conn_accept(struct sn_conn *conn, void *arg);

/*
 * The answer of a remote op of `c` has been written into `reply` (n bytes; err: it failed and
 * nothing was written; `carried`: the key and value bytes its batch held): writes the error
 * line if any, ends the slot, and lets the connection read on when it had paused.
 */
void kv_conn_answered(struct kv_conn *c, struct sn_reply *reply, int err, size_t n, size_t carried);

/* ---- kv_metrics.c: GET /metrics --------------------------------------------------------- */

extern const struct sn_conn_ops kv_metrics_ops;

void *kv_metrics_accept(struct sn_conn *conn, void *arg);

/* The Prometheus page for the given per-core snapshots into out. 0 or -ENOMEM. */
int kv_metrics_format(struct app_outbuf *out, const struct kv_core_snap *snap, unsigned ncores);

/* The memcached "stats" answer for the given per-core snapshots. 0 or -ENOMEM. */
int kv_stats_format(struct app_outbuf *out, const struct kv_core_snap *snap, unsigned ncores);

#endif
