/*
 * The sharded memcached-compatible server (apps/kv): shared state and the pieces that the
 * connection code (kv_conn.c), the cross-core batches (kv_batch.c), the all-core commands
 * (kv_gather.c), the metrics page (kv_metrics.c) and main.c use.
 *
 * Sharding. Every key is owned by one core: sn_partition(kv_srv.part, key) picks it. A
 * connection lives on one core (the one that accepted it); it parses its requests there, runs
 * the commands on keys its core owns inline on the core's store, and sends the others to their
 * owner in a batch (kv_batch.c). Replies leave in request order: each connection keeps a FIFO
 * of reply segments (bytes already made, or a slot in a batch or gather still in flight) and
 * writes from its head as long as the head is ready.
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

#define KV_DEFAULT_PORT 11211
#define KV_DEFAULT_MAXCONNS 1024

/*
 * Output backlog above which a connection takes no more commands (kv_conn.c, "Back-pressure");
 * the listener's limits.output_high is set to the same value, so libsn pauses reading at the
 * same mark and presents the held input again once half of it has left. Keep them equal.
 */
#define KV_OUTPUT_HIGH ((size_t)1 << 20)
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
    const char *partitioner; /* sn_partition_from_string spec without N */
    size_t mem_total;        /* -m, bytes over all cores */
    size_t item_max;         /* -I */
    unsigned max_conns;      /* -c, whole server */
    unsigned metrics_port;   /* 0: no metrics listener */
    unsigned idle_ms;        /* --idle-ms: close connections idle this long; 0: never */
    bool quiet;
};

/* Counters of one core; plain fields, touched by their core only. */
struct kv_core_counters {
    uint64_t curr_conns;  /* gauge */
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
    unsigned outbox_used;     /* how many outbox entries are not NULL */
    bool flush_queued;
    struct sn_task flush_task; /* sends the outbox at the next run of the task queue */
    uint64_t batch_seq;
    struct kv_batch *spare;   /* finished batches kept for reuse (their buffers stay) */
    unsigned nspare;
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
    struct mc_cmd cmd;  /* slices point into the batch's `in` once it is sent */
    uint32_t end;       /* the owner: end of this op's answer in `out` */
    int err;            /* the owner: 0 or -ENOMEM */
};

struct kv_batch {
    struct kv_batch *next_spare;
    unsigned from, to;
    bool sent, done;
    int err;              /* the call failed (e.g. -ECANCELED at shutdown): no answers */
    unsigned refs;        /* 1 until done, plus one per op not yet consumed by its conn */
    uint64_t seq;
    struct kv_op *ops;
    uint32_t nops, capops;
    struct app_outbuf in;   /* copies of the keys and values: the batch owns them */
    struct app_outbuf out;  /* the answers, written by the owner */
    struct kv_conn **conns; /* connections waiting on this batch (one ref each) */
    uint32_t nconns, capconns;
};

/*
 * Queues `cmd` (a single-key command, or with `key` set: one key of a get) for the core that
 * owns the key, copying the key and the value into the batch (the caller's buffer may go away
 * once this returns). Returns the op's index in *batch, or -ENOMEM.
 */
int kv_batch_add(struct kv_core *kc, unsigned owner, struct kv_conn *conn,
                 const struct mc_cmd *cmd, const struct mc_slice *key, struct kv_batch **batch);

/* Sends every batch of the calling core's outbox now. */
void kv_batch_flush(struct kv_core *kc);

/*
 * An op's answer bytes (valid while the op is not released): 0, or the error that kept it from
 * running (the call failed, e.g. -ECANCELED at shutdown, or -ENOMEM on the owner).
 */
int kv_batch_answer(const struct kv_batch *b, uint32_t op, const char **p, size_t *len);

/* The connection is done with one op of b. */
void kv_batch_release(struct kv_batch *b);

/* Frees the spare batches and any batch left in the outbox (main thread, after sn_run). */
void kv_batch_cache_free(struct kv_core *kc);

/* ---- kv_gather.c: commands that run on every core ----------------------------------------- */

enum kv_gather_kind { KV_G_STATS, KV_G_RESET, KV_G_FLUSH, KV_G_METRICS };

struct kv_core_snap {
    struct mc_store_stats st;
    struct kv_core_counters c;
};

struct kv_gather_slot;

struct kv_gather {
    enum kv_gather_kind kind;
    int32_t exptime; /* flush_all delay */
    bool noreply;
    bool done;
    bool starting;   /* inside kv_gather_start: on_done is not called */
    unsigned pending; /* cores still to answer */
    unsigned refs;    /* 1 while in flight + 1 for the waiter */
    struct kv_core_snap *snap;      /* [ncores] */
    struct kv_gather_slot *slots;   /* [ncores]: the arg of each core's call */
    struct app_outbuf out;
    void (*on_done)(struct kv_gather *g, void *arg);
    void *arg;
};

/*
 * Runs `kind` on the calling core now and sends it to every other core (after the calling
 * core's outbox). When all have answered, the answer is formatted into g->out (memcached
 * text, or for KV_G_METRICS the Prometheus page) and g->done is set; on_done(g, arg) then runs
 * on the calling core, unless it was all done before kv_gather_start returned (check g->done).
 * NULL on -ENOMEM. The caller holds one reference (kv_gather_release).
 */
struct kv_gather *kv_gather_start(enum kv_gather_kind kind, int32_t exptime, bool noreply,
                                  void (*on_done)(struct kv_gather *g, void *arg), void *arg);

void kv_gather_release(struct kv_gather *g);

/* ---- kv_conn.c: memcached connections ----------------------------------------------------- */

extern const struct sn_conn_ops kv_conn_ops;

/* on_accept of the memcached listener. */
void *kv_conn_accept(struct sn_conn *conn, void *arg);

/* A batch takes a reference on a connection whose answers it carries... */
void kv_conn_hold(struct kv_conn *c);

/* ...and drops it when it has come back: the connection writes what is ready now. */
void kv_conn_batch_done(struct kv_conn *c);

/* ---- kv_metrics.c: GET /metrics --------------------------------------------------------- */

extern const struct sn_conn_ops kv_metrics_ops;

void *kv_metrics_accept(struct sn_conn *conn, void *arg);

/* The Prometheus page for the given per-core snapshots into out. 0 or -ENOMEM. */
int kv_metrics_format(struct app_outbuf *out, const struct kv_core_snap *snap, unsigned ncores);

/* The memcached "stats" answer for the given per-core snapshots. 0 or -ENOMEM. */
int kv_stats_format(struct app_outbuf *out, const struct kv_core_snap *snap, unsigned ncores);

#endif
