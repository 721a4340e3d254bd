/*
 * Internal: io_uring operations with completion callbacks, for the reactor's own modules
 * (network, files). A module embeds a struct sn__io_op in its request object, gets an SQE
 * with sn__sqe_get, prepares it with liburing's io_uring_prep_*, and binds the op to it; the
 * loop submits at the end of the turn and calls op->cb(op, res, flags) for each CQE on the
 * same core. A multishot operation stays in flight while its CQEs carry IORING_CQE_F_MORE.
 *
 * Groups (issue 16): an op records the run tag of the code that binds it (its scheduling group
 * and serving bit, core/sched.h), and its callback runs under that tag, so what the callback
 * starts (continuations, tasks, timers, further I/O) stays in that group. A callback of a
 * group other than main is timed (two sn_now_ns reads, wall time) and charged to the group:
 * its run time and virtual run time, not its task count. Main's callbacks are not timed, so
 * ungrouped code pays nothing for this.
 *
 * Shutdown: when the core enters stopping mode every operation still in flight is cancelled
 * (its callback then sees -ECANCELED, or the result if it completed first). The core counts
 * as busy while operations are in flight, so shutdown waits for their last CQE.
 *
 * All functions: the owning core only.
 */
#ifndef SN_REACTOR_IO_H
#define SN_REACTOR_IO_H

#include <sn/list.h>

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

struct sn__io_op;
typedef void (*sn__io_cb)(struct sn__io_op *op, int res, uint32_t cqe_flags);

struct sn__io_op {
    sn__io_cb cb;
    struct sn_list_node link; /* in the core's in-flight list */
    bool inflight;
    uint8_t tag; /* the run tag of the code that bound it (the callback runs under it) */
};

/*
 * An SQE of the calling core's ring, or NULL when the SQ is full even after submitting what
 * it holds (or the thread is not a core). Prepare it, then sn__sqe_bind it to an op, or set
 * user_data 0 for an operation whose completion nobody needs.
 */
struct io_uring_sqe *sn__sqe_get(void);

/* Binds `op` (callback set by the caller) to `sqe`: its CQE goes to op->cb, which runs under
 * the run tag of the caller (its scheduling group). */
void sn__sqe_bind(struct io_uring_sqe *sqe, struct sn__io_op *op);

/* sn__sqe_bind, but the callback runs under `tag` (a connection's ops run in the group of the
 * code that opened the connection, whoever queued the bytes). */
void sn__sqe_bind_as(struct io_uring_sqe *sqe, struct sn__io_op *op, uint8_t tag);

/* Initialises an op with its callback. */
static inline void sn__io_op_init(struct sn__io_op *op, sn__io_cb cb)
{
    op->cb = cb;
    sn_list_node_init(&op->link);
    op->inflight = false;
    op->tag = 0;
}

struct sn__core;
/* Loop side: handles one CQE that is not reserved (user_data 0 is ignored). */
void sn__io_complete(struct sn__core *c, uint64_t user_data, int res, uint32_t flags);
/* Loop side: queues a cancel for every op in flight (once, at stop). */
void sn__io_cancel_all(struct sn__core *c);
/* Loop side: how many connections of the calling core received bytes since the last call
 * (reactor/net_core.c; 0 before the core's network state exists). Owner core only. */
unsigned sn__net_take_active(void);

#endif
