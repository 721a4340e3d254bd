/*
 * Internal: the network layer's per-core state, connections, listeners and UDP sockets
 * (contract in include/sn/net.h, design in docs/ARCHITECTURE.md, "Network").
 *
 * Per core (struct sn__netc, thread-local, made on first use): the provided buffer ring, the
 * lists of open sockets, the connections with output to send this turn, and a "sentinel": a
 * timeout op that never expires and is only cancelled by the reactor at shutdown, which is
 * how the network layer learns the reactor stops even when none of its sockets has an
 * operation in flight. The state is freed when the last socket of a stopping core is gone.
 *
 * Everything here is touched by the owning core only, except the listener's counters (atomic).
 */
#ifndef SN_REACTOR_NET_INTERNAL_H
#define SN_REACTOR_NET_INTERNAL_H

#include <sn/future.h>
#include <sn/list.h>
#include <sn/net.h>
#include <sn/sched.h>
#include <sn/timer.h>

#include <stdatomic.h>
#include <sys/uio.h>

#include "core/pool.h"
#include "core/sched.h"
#include "reactor/io.h"
#include "reactor/net_sqe.h"

#define SN__NET_BGID  0x5e  /* buffer group id of the per-core ring */
#define SN__NET_NBUFS 128   /* buffers in the ring (power of two) */
#define SN__NET_BUFSZ 16384 /* bytes per buffer, and the plain recv buffer */
/* Ring buffers are lent (to the output by sn_conn_write_input, to a stream's reader) only for
 * at least SN__NET_LEND_MIN bytes; at most SN__NET_LEND_MAX buffers of a core are lent at
 * once, so receiving always keeps an eighth of the ring, and at most SN__NET_LEND_OUT_MAX of
 * them to queued output, which peers that do not read can hold for good (a stream's pins
 * last only until its fiber reads on). Past a limit the bytes are copied. */
#define SN__NET_LEND_MIN     1024
#define SN__NET_LEND_MAX     (SN__NET_NBUFS - SN__NET_NBUFS / 8)
#define SN__NET_LEND_OUT_MAX (SN__NET_NBUFS / 2)
#define SN__NET_CHUNK        16384  /* smallest output chunk */
#define SN__NET_FIXED_MAX    65536u /* registered file slots per core at most (net_files.c) */
#define SN__NET_FIX_PENDING  1024u  /* slot registrations queued at once, > SQ entries */
#define SN__NET_IOV          32     /* iovecs per send */
/* Bytes that may arrive while the app stopped reading, past input_max: what can be in flight
 * when the receive is cancelled (one buffer for plain recv, at most the ring otherwise). */
#define SN__NET_HELD_SLACK ((size_t)SN__NET_NBUFS * SN__NET_BUFSZ)

struct sn__netc;
struct sn_listener;

/* One piece of a connection's output: bytes owned by libsn, or the caller's (write_ref). */
struct sn__chunk {
    struct sn__chunk *next;
    char *data;
    size_t len; /* valid bytes */
    size_t off; /* bytes already sent */
    size_t cap; /* owned: capacity of buf; 0 for a reference */
    void (*release)(void *arg);
    void *release_arg;
    struct sn__pool *pool; /* the block's pool (reply buffers), NULL: malloc */
    char buf[];
};

/* Reply buffers: blocks of the core's reply pool (a slot's first bytes), then malloc'd
 * chunks of at least SN__NET_CHUNK. */
#define SN__REPLY_BLOCK 1024
#define SN__REPLY_CAP   (SN__REPLY_BLOCK - sizeof(struct sn__chunk))
/* A slot's bytes up to this many, in one block, are copied into the output when their turn
 * comes rather than spliced (bench_reply: cheaper than an iovec each). */
#define SN__REPLY_COPY_MAX 512

/* A reply slot (include/sn/reply.h), from the core's general pool. */
struct sn_reply {
    struct sn_reply *next; /* in the connection's slots, in request order */
    struct sn_conn *conn;
    struct sn__chunk *head, *tail; /* bytes waiting for the slot's turn (never the oldest) */
    size_t len;                    /* their bytes */
    size_t mem;                    /* their buffer bytes (counted in conn->reply_mem) */
    bool ended;
};

/* A wait of sn_conn_flush: settles once sent_total reaches target. */
struct sn__flushw {
    struct sn__flushw *next;
    uint64_t target;
    struct sn_promise *p;
};

struct sn_conn {
    int fd;
    bool fixed; /* the socket is also in the core ring's file slot numbered fd */
    unsigned core;
    uint8_t tag; /* run tag of the code that opened it: its io callbacks run in that group */
    struct sn__netc *nc;
    const struct sn_conn_ops *ops;
    void *arg;
    struct sn_conn_limits lim;
    struct sn_listener *l;    /* NULL for outgoing connections */
    struct sn_list_node link; /* in the netc's conns */

    /* Receiving. */
    struct sn__io_op rop;
    /* The netc's epoch when bytes last came (sn__conn_note_rx). */
    unsigned rx_epoch;
    bool bufring; /* multishot recv on the ring, else plain recv into rbuf */
    bool rcancel; /* a cancel of rop was queued */
    bool reading; /* the app wants to read (sn_conn_set_reading) */
    bool paused;  /* backpressure: output over the limit */
    bool eof;
    bool eof_held; /* EOF seen while input is held: on_eof waits until it was presented */
    bool repost;   /* held input (or EOF) waits to be presented by repost_task */
    bool repost_queued;
    char *rbuf;
    char *ibuf; /* what on_data left unconsumed, and what arrived while reading was off */
    size_t ilen, icap;
    size_t held; /* bytes of ibuf received while reading was off, not yet presented */
    struct sn_task repost_task;

    /* Sending. */
    struct sn__io_op sop;
    bool scancel;
    bool dirty; /* on the netc's flush list */
    struct sn_conn *dirty_next;
    struct sn__chunk *ohead, *otail;
    size_t backlog;
    bool drain_armed; /* the backlog went over output_high: on_drain once it is low again */
    uint64_t nsends;  /* sends started (for the tests of corking) */
    struct iovec iov[SN__NET_IOV];
    struct msghdr msg;

    /* After -EAGAIN (net_again.c): consecutive -EAGAINs of sends / receives, and the
     * back-off's timeout, which the send (swait) and / or the receive (rwait) wait for. */
    uint8_t sagain, ragain;
    bool swait, rwait;
    bool acancel; /* a cancel of aop was queued */
    struct sn__io_op aop;
    struct __kernel_timespec again_ts;

    /* Lifecycle. */
    bool wr_closed; /* writes refused */
    bool want_shut; /* SHUT_WR once the output drained */
    bool shut_done;
    bool want_close; /* close once the output drained */
    bool aborting;   /* drop everything and close */
    bool linger0;    /* close with a reset */
    bool fin_queued; /* fin_task queued: no callback but on_error/on_close any more */
    bool sqe_wait;   /* an operation lacked an SQE: progress again after the next submit */
    int err;
    /* Callbacks running, plus a queued repost_task and a pending SQE wait: the connection
     * must not finish under them. */
    unsigned refs;
    uint64_t stop_deadline; /* reactor stop: output may leave until then (0: not stopping) */
    struct __kernel_timespec stop_ts; /* the link timeout of a send made while stopping */
    struct sn_task fin_task;
    struct sn_timer idle;
    uint64_t last_active;
    struct sn__waiters closed; /* futures of sn_conn_close/abort: settled after on_close */
    /* Memory beyond on_close: kept while held (sn_conn_hold) or a slot is open. */
    unsigned holds;
    bool finished; /* on_close has run */

    /* Reply slots (net_reply.c): begun and not yet written out, in request order. After the
     * connection finished the list is empty and nslots counts the slots still open. */
    struct sn_reply *rhead, *rtail;
    uint32_t nslots;
    size_t reply_mem;              /* buffer bytes of the slots behind the head */
    struct sn__waiters reply_room; /* fibers waiting in sn_reply_begin */

    /* Line mode (net_lines.c). */
    size_t block_need; /* > 0: the next bytes go to on_block */
    bool skipping;     /* dropping the rest of an over-long line */

    /* sn_conn_flush (net_send.c). */
    uint64_t sent_total; /* bytes handed to the kernel */
    struct sn__flushw *fhead, *ftail;

    /* Read as a stream by a fiber (net_stream.c), else NULL. */
    struct sn__stream *stream;
    /* Its sn_serve fiber still runs: a graceful close (also the reactor stop's) waits for
     * it, as for open slots, so what it writes after its last read still leaves. (Not a
     * shutdown: the fiber half-closes when its output is done.) */
    bool fiber_runs;
};

/* Receive buffers a stream holds lent (sn_conn_read_some hands them out), at most. */
#define SN__STREAM_LENT 16
/* Runs in a stream's queue at most. Lent and block runs are queued only while two slots are
 * free, so a buffer run always finds one. */
#define SN__STREAM_RUNS (2 * SN__STREAM_LENT + 2)

/* A receive buffer a stream could not keep lent, copied whole into its own block: handed out
 * and referenced by output (sn_conn_write_input) as a lent buffer is, so it is copied once.
 * Blocks of SN__NET_BUFSZ bytes go back to a per-core cache of SN__NET_SBLOCK_CACHE: freeing
 * bursts of them to malloc made it trim its heap (madvise, a TLB shootdown each time: 5% of
 * sn-echo's time at 64 KiB messages) and fault the pages in again at the next burst. */
#define SN__NET_SBLOCK_CACHE 64
struct sn__sblock {
    struct sn__netc *nc;     /* holds a reference on it while the block lives */
    struct sn__sblock *next; /* in the core's cache */
    size_t cap;              /* bytes of data */
    uint32_t refs;           /* the stream's run + queued writes */
    char data[];
};

/* A run of a stream's unread input (net_stream_runs.c): a receive buffer's bytes held without
 * a copy (lend: the pin), a copy of one in a block (blk), or (neither) the next `len` bytes of
 * the stream's buffer. */
struct sn__run {
    const char *data; /* lent or block: its bytes; buffer run: NULL */
    size_t len;
    struct sn__lend *lend;  /* lent: its pin (net_lend.c) */
    struct sn__sblock *blk; /* block: its reference */
};

/* A connection's input as a stream for fiber reads (net_stream.c, net_stream_runs.c). */
struct sn__stream {
    /* The unread input in arrival order: runs[0 .. nruns), lent buffers and copied runs
     * interleaved; the copied runs' bytes are buf[pos .. len) in the same order. */
    struct sn__run runs[SN__STREAM_RUNS];
    unsigned nruns;
    unsigned nlent;      /* lent runs */
    size_t held_bytes;   /* bytes of the lent and block runs */
    bool run_out;        /* the last slice is runs[0] as it is (lent or block): dropped at the
                            next read */
    bool lending;        /* the last read was sn_conn_read_some: new input may be lent */
    uint64_t lent_reads; /* slices handed out lent (tests) */
    char *buf;
    size_t cap, len, pos; /* unread: buf[pos .. len) */
    size_t taken;         /* bytes the last slice (and its line end) used: gone at the next read */
    char *retired;        /* the buffer an outstanding slice points into, after a growth */
    struct sn_promise *waiter; /* the fiber waiting for input */
    int err;                   /* the connection ended: reads fail with it */
    bool slice_out;            /* a slice points into the buffer */
    bool eof;                  /* the peer closed its side */
    bool stopped;              /* reactor stop or server close: reads fail with -ECANCELED */
    bool skipping;             /* dropping input up to the end of an over-long line */
    bool full;                 /* reading paused: SN_STREAM_READ_AHEAD unread */
    bool woken;                /* the waiting fiber was woken and has not read yet */
    struct sn_list_node link;  /* in its server's per-core list (net_serve.c) */
    void *owner;               /* its server's per-core record (net_serve.c) */
};

/* A listener's state on one core. */
struct sn__lslot {
    struct sn_listener *l;
    struct sn__netc *nc; /* set when the slot starts */
    unsigned core;
    int fd; /* -1: no socket on this core (one-core mode, or closed) */
    struct sn__io_op aop;
    uint8_t tag; /* group of sn_listen's caller: accepts (and so connections) run in it */
    struct sn_timer retry; /* re-arms accept after a transient error or without an SQE;
                              retries a cancel that had no SQE */
    bool started, closing, done;
    struct sn_promise *closed; /* settles when the slot is done (sn_listener_close) */
    struct sn_list_node link;  /* in the netc's slots */
    SN_CACHE_ALIGNED _Atomic uint64_t nconns; /* open, or on their way to this core */
    _Atomic uint64_t assigned; /* ever given to this core (the balance of short connections) */
    _Atomic uint64_t accepted, refused;
    _Atomic uint64_t moved; /* accepted here, sent to another core */
};

struct sn_listener {
    struct sn_listen_config cfg;
    uint16_t port;
    unsigned ncores;
    unsigned acceptor;       /* one-core mode: the accepting core */
    _Atomic unsigned refs;   /* app + open slots + connections + hand-offs in flight */
    _Atomic int app_ref;     /* 1 until sn_listener_close or the reactor stop dropped it */
    _Atomic unsigned rr;     /* tie breaker for the core choice (net_listen.c, pick_core) */
    void (*fini)(void *arg); /* called when the listener is freed (sn__listen) */
    void *fini_arg;
    struct sn__lslot slots[];
};

struct sn_udp {
    int fd;
    unsigned core;
    uint16_t port;
    struct sn__netc *nc;
    struct sn_udp_config cfg;
    struct sn__io_op rop;
    uint8_t tag; /* group of sn_udp_open's caller: receives run in it, whoever re-arms */
    bool closing, rcancel, fin_queued;
    bool sqe_wait;  /* waiting for an SQE (re-arm or cancel) */
    unsigned sends; /* sends in flight */
    struct sn_task fin_task;
    struct sn__waiters closed; /* futures of sn_udp_close: settled after on_close */
    struct msghdr msg;
    struct iovec iov;
    struct sockaddr_storage from;
    struct sn_list_node link; /* in the netc's udps */
    char buf[65536];
};

/* A ring buffer lent to queued output by sn_conn_write_input (net_lend.c). It goes back to
 * the ring when no queued write refers to it and recv_cb is not presenting it. */
struct sn__lend {
    struct sn__netc *nc;
    uint32_t refs; /* queued writes + pins */
    uint32_t pins; /* streams holding its bytes as unread input (at most one) */
    uint32_t outs; /* queued writes referring to it */
    bool presenting;
};

/* Where a core's received bytes went (SN_NET_STATS=1 prints them when the core's network
 * state is freed; tests read them with sn__net_counts): the copies user space makes, and why
 * a stream could not keep a receive buffer lent instead of copying it. */
struct sn__net_counts {
    uint64_t recv_bytes;    /* bytes received on connections */
    uint64_t held_copied;   /* copied into a connection's input buffer (left or held input) */
    uint64_t stream_copied; /* copied into a stream's buffer (sn__stream_feed) */
    uint64_t out_copied;    /* copied into output chunks (sn__conn_out_copy) */
    uint64_t stream_lent;   /* receive buffers a stream kept lent (pinned) */
    uint64_t lend_budget;   /* not lent: SN__NET_LEND_MAX buffers of the core lent already */
    uint64_t lend_slots;    /* not lent: the stream's SN__STREAM_LENT slots full */
    uint64_t lend_small;    /* not lent: under SN__NET_LEND_MIN bytes */
    uint64_t lend_other;    /* not lent: held input, not a ring buffer */
    uint64_t out_budget;    /* sn_conn_write_input copied: budget spent */
    uint64_t send_again;    /* sends that ended with -EAGAIN, made again (net_send.c) */
    uint64_t recv_again;    /* receives that ended with -EAGAIN, armed again (net_recv.c) */
    uint64_t again_waits;   /* back-offs after repeated -EAGAINs (net_again.c) */
};

struct sn__netc {
    unsigned core;
    struct sn__net_counts counts;
    unsigned lend_max; /* SN__NET_LEND_MAX (tests may lower it) */
    unsigned out_max;  /* SN__NET_LEND_OUT_MAX (tests may lower it) */
    /* Sends and receives still to be faked as -EAGAIN completions (sn__net_inject_eagain). */
    unsigned eagain_sends, eagain_recvs;
    unsigned refs; /* sentinel + sockets + queued flush task */
    bool stopping;
    bool plain_env;  /* SN_NET_PLAIN_RECV=1 */
    bool poll_first; /* the kernel takes IORING_RECVSEND_POLL_FIRST (net_again.c) */
    int br_state;    /* 0 untried, 1 ready, -1 unavailable */
    struct io_uring_buf_ring *br;
    char *bufs;
    size_t br_bytes;
    struct sn__lend lend[SN__NET_NBUFS];
    unsigned nlent;       /* buffers with refs > 0; each holds a netc reference */
    unsigned nout;        /* buffers with outs > 0 */
    int cur_bid;          /* the ring buffer an on_data of this core is being given now, or -1 */
    size_t cur_len;       /* its bytes */
    struct sn_list conns; /* struct sn_conn */
    struct sn_list slots; /* struct sn__lslot */
    struct sn_list udps;  /* struct sn_udp */
    struct sn_conn *dirty;
    bool flush_queued;
    struct sn_task flush_task;
    struct sn__io_op sentinel;
    struct __kernel_timespec sentinel_ts;
    int files_state; /* registered file slots: 0 untried, 1 ready (nslots), -1 unavailable */
    unsigned nslots;
    unsigned fix_next;                /* next value of fix_fds to use */
    int fix_fds[SN__NET_FIX_PENDING]; /* fds of queued slot registrations (net_files.c) */
    struct sn__pool rpool;            /* SN__REPLY_BLOCK-byte reply buffers */
    struct sn__sblock *sfree;         /* cached stream blocks (net_stream_runs.c) */
    unsigned nsfree;
    /* Connections that received bytes in this epoch; sn__net_take_active (called by each
     * sleep of the loop) reads the count and starts the next epoch. */
    unsigned epoch;
    unsigned active;
};

/* Counts `c` as active in this epoch (its first receive of the epoch only). Owner core. */
static inline void sn__conn_note_rx(struct sn_conn *c)
{
    if (c->rx_epoch != c->nc->epoch) {
        c->rx_epoch = c->nc->epoch;
        c->nc->active++;
    }
}

/* Ring buffers of the calling core lent to queued output now (sn_conn_write_input; tests). */
unsigned sn__net_lent_buffers(void);
/* Lowers the calling core's lend limits (SN__NET_LEND_MAX, SN__NET_LEND_OUT_MAX) to force
 * the copying paths; no effect before its network state exists (tests). */
void sn__net_set_lend_limits(unsigned all, unsigned out);
/* Makes the calling core's next `sends` sends and `recvs` receive arms complete with -EAGAIN
 * without being issued (a NOP stands for each), as the kernel completes them when it gave
 * up waiting (see net_send.c); no effect before its network state exists (tests). */
void sn__net_inject_eagain(unsigned sends, unsigned recvs);
/* The calling core's counts (zeros before its network state exists; tests). */
struct sn__net_counts sn__net_counts(void);
/* Reply buffers of the calling core's pool in use now (tests). */
uint64_t sn__net_reply_blocks(void);

/* net_core.c */
/* The calling core's state, made on first use; NULL with *err set (-EPERM off a core,
 * -ECANCELED when the reactor stops, -ENOMEM). */
struct sn__netc *sn__netc_get(int *err);
void sn__netc_ref(struct sn__netc *nc);
void sn__netc_unref(struct sn__netc *nc);
/* True when the ring of provided buffers can be used (set up on first call). */
bool sn__netc_bufring(struct sn__netc *nc);
/* Returns buffer `bid` to the ring. */
void sn__netc_buf_return(struct sn__netc *nc, unsigned bid);
static inline char *sn__netc_buf(struct sn__netc *nc, unsigned bid)
{
    return nc->bufs + (size_t)bid * SN__NET_BUFSZ;
}
/* Puts `c` on the list of connections that send at the next flush. */
void sn__netc_mark_dirty(struct sn__netc *nc, struct sn_conn *c);
/* One SQE, or two adjacent ones (for a linked pair) when `b` is not NULL. false: none. */
bool sn__net_sqes(struct io_uring_sqe **a, struct io_uring_sqe **b);
/* Queues a cancel of `op` (no completion wanted); false when no SQE could be had (the
 * caller retries after sn__sqe_wait). */
bool sn__net_cancel(struct sn__io_op *op);
/*
 * Submits queued SQEs now instead of at the end of the turn: for a cancel that must take
 * effect before the kernel delivers more (a reap phase can go on while a peer streams).
 */
void sn__net_submit_now(void);
/* Closes a socket, with a reset (SO_LINGER 0) when `reset`. */
void sn__net_close_fd(int fd, bool reset);
/* True once this core must not start new network work. */
bool sn__net_stopping(struct sn__netc *nc);
/* True in the run's final phase (reactor/loop.c): no io completes any more, so output that
 * is still queued (a reply slot ended by a call the shutdown cancelled) cannot leave. */
bool sn__net_final(void);

/* net_files.c */
/* Puts the new connection's socket into the core ring's file slot numbered like its fd, when
 * slots are available; its operations then use the slot (sn__conn_sqe_file). */
void sn__conn_fix_file(struct sn_conn *c);
/* Drops the slot; call before closing the fd. */
void sn__conn_unfix_file(struct sn_conn *c);
/* Makes `sqe`, prepared with c->fd, name the connection's slot when it has one. */
static inline void sn__conn_sqe_file(const struct sn_conn *c, struct io_uring_sqe *sqe)
{
    if (c->fixed)
        sqe->flags |= IOSQE_FIXED_FILE; /* slot number == fd */
}

/* net_conn.c */
/* Makes a connection on the calling core for an open socket; NULL on -ENOMEM (fd left open). */
struct sn_conn *sn__conn_new(struct sn__netc *nc, int fd, const struct sn_conn_limits *lim,
                             const struct sn_conn_ops *ops, void *arg, struct sn_listener *l);
/* Starts reading and the idle timer; call once the app has the connection. */
void sn__conn_start(struct sn_conn *c);
/* Decides what the connection does next (read, pause, shut, finish). */
void sn__conn_progress(struct sn_conn *c);
/* Ends the connection with `err` (first error wins): drops output, cancels, closes. */
void sn__conn_fail(struct sn_conn *c, int err);
/* Reactor stop: closes the connection gracefully with -ECANCELED. */
void sn__conn_stop(struct sn_conn *c);
/* Notes activity for the idle timeout (the loop turn's time: one clock read per turn for all
 * connections); without a timeout (idle_ms 0) the clock is not read. */
static inline void sn__conn_touch(struct sn_conn *c)
{
    if (c->lim.idle_ms)
        c->last_active = sn__sched_now(sn__tls_sched);
}

/*
 * No SQE for an operation of `c`: progress again after the loop's next submit (holds a ref
 * meanwhile). While the reactor stops there is no next turn to wait for: the reactor cancels
 * what is in flight, a receive is not needed any more, and output that cannot be sent is
 * dropped (the connection ends with -EBUSY, reset).
 */
void sn__conn_wait_sqe(struct sn_conn *c);

/* net_again.c */
/*
 * A send (`send`) or receive of `c` ended with -EAGAIN and will be made again: counts it
 * (send_again / recv_again, and the -EAGAINs in a row), and past a few in a row starts (or
 * joins) the back-off that c->swait / c->rwait then wait for.
 * Not for an aborting connection, nor for a receive of a closing one (nothing is made again);
 * a closing connection's send is (its output still leaves). Owner core.
 */
void sn__conn_again(struct sn_conn *c, bool send);
/* True when the core's kernel takes IORING_RECVSEND_POLL_FIRST. Owner core. */
bool sn__net_poll_first_ok(void);
/* Makes a retried send or receive (`again` > 0: it follows an -EAGAIN) wait for the socket
 * to be ready before it tries (the kernel would otherwise try at once). */
static inline void sn__again_poll_first(const struct sn_conn *c, struct io_uring_sqe *sqe,
                                        uint8_t again)
{
    if (sn_unlikely(again) && c->nc->poll_first)
        sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
}

/* net_recv.c */
/* Starts a receive (multishot on the ring or one plain recv). 0, -EBUSY (no SQE), -ENOMEM. */
int sn__conn_arm_recv(struct sn_conn *c);
/* Queues the presentation of held input (and a held EOF) from the run queue. */
void sn__conn_repost(struct sn_conn *c);

/* net_send.c */
/* Starts a send of the queued output (called from the netc flush). */
void sn__conn_send(struct sn_conn *c);
/* Releases every queued chunk (the output is dropped). */
void sn__conn_out_drop(struct sn_conn *c);
/* Frees one chunk: calls its release, returns its memory. */
void sn__chunk_free(struct sn__chunk *k);
/* Appends a copy to the output, no checks (the caller checked the connection takes it).
 * 0 or -ENOMEM (nothing queued). */
int sn__conn_out_copy(struct sn_conn *c, const void *data, size_t len);
/* Appends the chunk list head..tail (len bytes) to the output. */
void sn__conn_out_splice(struct sn_conn *c, struct sn__chunk *head, struct sn__chunk *tail,
                         size_t len);
/* A reference chunk (no copy), or NULL on -ENOMEM. */
struct sn__chunk *sn__chunk_ref(const void *data, size_t len, void (*release)(void *arg),
                                void *release_arg);
/* Settles the flush waits reached, or fails them all with err (when err != 0). */
void sn__conn_flushed(struct sn_conn *c, int err);
/* The error a write to `c` fails with once it does not take bytes any more. */
int sn__conn_write_err(const struct sn_conn *c);

/* net_reply.c */
/* Bytes written on the connection while slots are open: behind them, as a slot that ended. */
int sn__reply_behind(struct sn_conn *c, const void *data, size_t len);
int sn__reply_behind_ref(struct sn_conn *c, struct sn__chunk *k);
/* The connection finished (after on_close): drop every buffered byte, keep open slots. */
void sn__reply_conn_finished(struct sn_conn *c);
/* Over the output or slot limits: reading must pause (and stop between two lines). */
static inline bool sn__conn_over(const struct sn_conn *c)
{
    return c->backlog + c->reply_mem > c->lim.output_high || c->nslots >= c->lim.max_open_replies;
}
/* On or not closing, and under the limits: the app may take more input (sn_conn_may_read). */
static inline bool sn__conn_may_read(const struct sn_conn *c)
{
    return c->reading && !c->want_close && !c->aborting && !c->fin_queued && !sn__conn_over(c);
}
/* Back at half of every limit: reading may resume. */
static inline bool sn__conn_under_half(const struct sn_conn *c)
{
    return c->backlog + c->reply_mem <= c->lim.output_high / 2 &&
           c->nslots <= c->lim.max_open_replies / 2;
}
/* The connection's memory is no longer needed by anyone: free it. */
void sn__conn_free(struct sn_conn *c);
/* Slots are open: a shutdown or graceful close waits for them. */
static inline bool sn__conn_slots_pending(const struct sn_conn *c)
{
    return c->rhead != NULL;
}

/* net_lend.c: lending receive buffers to a stream */
/* From on_data of `c` (a stream): pins the receive buffer that data[0..len) lies in, so it
 * stays unchanged until sn__lend_unpin; NULL when it cannot (not a ring buffer being
 * presented, under SN__NET_LEND_MIN bytes, or SN__NET_LEND_MAX buffers lent already). */
struct sn__lend *sn__conn_pin_input(struct sn_conn *c, const char *data, size_t len);
/* Drops a pin; the buffer goes back to the ring once nothing refers to it. Owner core. */
void sn__lend_unpin(struct sn__lend *l);

/* net_stream.c */
/* The stream's on_data: keeps every byte for the reader. */
size_t sn__stream_feed(struct sn_conn *c, const char *data, size_t len);
/* The peer closed its side. */
void sn__stream_eof(struct sn_conn *c);
/* Reads fail from now on: -ECANCELED (stop) or the connection's end `err`. */
void sn__stream_stop(struct sn_conn *c, int err);
/* Reads fail with -ECANCELED from now on (a server close). */
void sn__stream_cancel(struct sn__stream *st);
/* net_stream_runs.c */
/* Makes `c` a stream connection (before it reads anything). 0 or -ENOMEM. */
int sn__stream_start(struct sn_conn *c);
/* Frees the stream with the connection's memory; unpins its lent runs. */
void sn__stream_free(struct sn_conn *c);
/* Queues new input data[0..len) behind the unread runs: lent (pinned, no copy) when the
 * reader takes what is there and a pin can be had, else copied. false on -ENOMEM. */
bool sn__stream_keep(struct sn_conn *c, struct sn__stream *st, const char *data, size_t len);
/* Drops a reference on a block (a queued write's release, or the stream's). */
void sn__sblock_release(void *arg);
/* Frees the core's cached blocks (with its network state). */
void sn__sblock_cache_free(struct sn__netc *nc);
/* At the start of a read: drops the last slice's bytes (a lent run is unpinned). */
void sn__stream_consume(struct sn__stream *st);
/* Copies every lent and block run into the buffer in order, leaving one copied run. 0 or
 * -ENOMEM. */
int sn__stream_flatten(struct sn_conn *c, struct sn__stream *st);

/* net_lines.c */
/* Line mode's on_data: splits data[0..len) into lines and blocks; returns the bytes used. */
size_t sn__lines_feed(struct sn_conn *c, const char *data, size_t len);

/* net_listen.c */
/*
 * sn_listen, plus fini(fini_arg) called once the listener's memory is freed: after it was
 * closed (by the app or the reactor stop) and its last connection is gone, or at once when
 * the listen fails. So memory that the listener's connections use (a server's) lives as long.
 */
struct sn_future *sn__listen(const struct sn_listen_config *cfg, void (*fini)(void *arg),
                             void *fini_arg);
void sn__lslot_stop(struct sn__lslot *s);
void sn__listener_unref(struct sn_listener *l);
/* A connection of `l` on `core` ended. */
void sn__listener_conn_gone(struct sn_listener *l, unsigned core);

/* net_udp.c */
void sn__udp_stop(struct sn_udp *u);

/* Internal queries for the tests (include this header). */
bool sn__conn_uses_bufring(const struct sn_conn *c);
uint64_t sn__conn_sends(const struct sn_conn *c);

#endif
