/*
 * Per-core counters of the reactor, kept by each core in its own memory with plain
 * single-writer updates, and readable from any thread (a snapshot that may be a few events
 * behind). Ready for a Prometheus export: every field is a monotonic counter unless marked
 * as a gauge. After sn_run returns, the last run's final values stay readable until the
 * next sn_run.
 */
#ifndef SN_METRICS_H
#define SN_METRICS_H

#include <sn/common.h>
#include <sn/mesh.h>
#include <sn/sched.h>

SN_BEGIN_DECLS

struct sn_core_metrics {
    uint64_t msgs_in;        /* mesh messages handled (requests and replies) */
    uint64_t msgs_out;       /* mesh messages sent */
    uint64_t tasks;          /* tasks run from the run queue */
    uint64_t cqes;           /* io_uring completions reaped */
    uint64_t sleeps;         /* times the loop blocked in io_uring */
    uint64_t wakeups_sent;   /* wake-ups this core sent to sleeping cores */
    uint64_t overflow;       /* messages that went through the mesh's overflow FIFO */
    uint64_t stalls;         /* loop phases that ran longer than --stall-ms in CPU time */
    uint64_t stall_max_ns;   /* gauge: the most CPU time such a phase ran */
    uint64_t preemptions;    /* phases longer than --stall-ms on the wall clock but not in
                                CPU time: the thread was preempted, stopped or blocked */
    uint64_t timers;         /* timers fired */
    uint64_t external;       /* functions run from the MPSC inbox of non-core threads */
    uint64_t loops;          /* loop turns */
    uint64_t cancelled;      /* cross-core calls failed with -ECANCELED at shutdown */
    uint64_t pool_in_use;    /* gauge: pooled blocks (futures, call records, copies) in use */
    uint64_t pool_capacity;  /* gauge: pooled blocks owned */
    uint64_t fibers;         /* gauge: fibers alive (spawned and not ended) */
    uint64_t fibers_spawned; /* fibers spawned */
    uint64_t fiber_stack_bytes; /* gauge: usable stack bytes of the live fibers */
    /* gauge: most stack bytes a measured fiber used (SN_FIBER_MEASURE_STACK), 0: none */
    uint64_t fiber_stack_high_water;
    /* sleeps that waited for a batch of completions (sn_config.io_batch_us) */
    uint64_t batched_sleeps;
    /* batched sleeps that woke with some completions but fewer than they waited for (the
     * batch's time ran out; a wait that a timer or a signal ended with none is not counted) */
    uint64_t batch_timeouts;
};

/*
 * Copies core `core`'s counters into *out: of the running reactor, or of the last run once
 * sn_run has returned. A core reading its own counters gets its gauges as they are now;
 * other readers get them as last published (every 1024 loop turns and before the core
 * sleeps). 0, or -EINVAL for a core that does not exist / no run yet. Any thread.
 */
SN_API int sn_metrics_core(unsigned core, struct sn_core_metrics *out);

/*
 * The sampled queue delay of cross-core messages from core `from` to core `to` (struct
 * sn_mesh_delay: samples, p50, p99, max; config delay_sample_every): how long a sampled
 * message waited between its send and its handling, staging and overflow included. Of the
 * running reactor, or of the last run once sn_run has returned (kept for runs of up to 64
 * cores). 0, or -EINVAL for bad cores, from == to, no run yet. Any thread.
 */
SN_API int sn_metrics_queue_delay(unsigned from, unsigned to, struct sn_mesh_delay *out);

/* One scheduling group on one core (include/sn/sched.h). */
struct sn_sched_group_metrics {
    uint64_t run_ns;      /* time its tasks ran: thread CPU time while other groups had
                             tasks queued too, wall time while it ran alone */
    uint64_t tasks;       /* tasks run */
    uint64_t queue_len;   /* gauge: tasks queued, as of the core's last choice */
    /* gauge: the longest time it had tasks queued without running one (from the scheduler's
     * last clock reading before it became runnable, so it may include part of a loop phase) */
    uint64_t wait_max_ns;
};

/*
 * Copies group g's figures on core `core` into *out (zeros when g never ran there): of the
 * running reactor, or of the last run once sn_run has returned (kept for runs of up to 64
 * cores). 0, or -EINVAL (NULL g or out, no such core, no run yet). Any thread.
 */
SN_API int sn_metrics_group(unsigned core, const struct sn_sched_group *g,
                            struct sn_sched_group_metrics *out);

SN_END_DECLS

#endif
