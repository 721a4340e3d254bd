/*
 * Internal: one io_uring per reactor core, set up with the best flags the kernel accepts,
 * plus the user_data values the reactor reserves for itself.
 *
 * Ownership (IORING_SETUP_SINGLE_ISSUER): the kernel ties the ring to ONE task, the "owner",
 * which alone may submit, wait (io_uring_enter) and register; others get -EEXIST. The owner
 * is the thread that creates the ring, or, when it is created with SN__URING_DISABLED, the
 * thread that calls sn__uring_enable(). So either create each ring on its reactor thread, or
 * create them all up front (e.g. on the main thread, so their fds are known before any
 * reactor runs) with SN__URING_DISABLED and have each reactor call sn__uring_enable() first.
 * Any thread may read u->fd and u->features, and may target the ring with IORING_OP_MSG_RING
 * from its own ring; closing (sn__uring_exit) is fine from any thread once the owner is done.
 *
 * With IORING_SETUP_DEFER_TASKRUN, completions are posted only when the owner enters the
 * kernel asking for events: io_uring_peek_cqe alone will never see them. Use
 * sn__uring_submit_and_poll() for a non-blocking turn and io_uring_wait_cqe* (or
 * io_uring_submit_and_wait*) to sleep.
 */
#ifndef SN_REACTOR_URING_H
#define SN_REACTOR_URING_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

/* What sn__uring_init obtained (u->features). */
enum {
    SN__URING_SINGLE_ISSUER = 1 << 0, /* IORING_SETUP_SINGLE_ISSUER */
    SN__URING_DEFER_TASKRUN = 1 << 1, /* IORING_SETUP_DEFER_TASKRUN */
    SN__URING_COOP_TASKRUN = 1 << 2,  /* IORING_SETUP_COOP_TASKRUN */
    SN__URING_SUBMIT_ALL = 1 << 3,    /* IORING_SETUP_SUBMIT_ALL */
    SN__URING_MSG_RING = 1 << 4,      /* IORING_OP_MSG_RING is supported */
    SN__URING_BUF_RING = 1 << 5,      /* provided buffer rings (io_uring_register_buf_ring) */
    SN__URING_CQE_SKIP = 1 << 6,      /* IOSQE_CQE_SKIP_SUCCESS (IORING_FEAT_CQE_SKIP) */
    SN__URING_FALLBACK = 1 << 7,      /* the plain-setup fallback was used (or forced) */
    SN__URING_TASKRUN_FLAG = 1 << 8,  /* IORING_SETUP_TASKRUN_FLAG: IORING_SQ_TASKRUN says
                                         when entering the kernel is needed */
    SN__URING_MIN_WAIT = 1 << 9,      /* a wait can take a minimum batch time
                                         (IORING_FEAT_MIN_TIMEOUT, Linux 6.12) */
};

/* Flags for sn__uring_init. */
enum {
    SN__URING_FORCE_FALLBACK = 1 << 0, /* plain setup, as if the kernel lacked the flags;
                                          also forced by env SN_URING_FALLBACK=1 */
    SN__URING_DISABLED = 1 << 1,       /* create disabled; the owner calls sn__uring_enable */
};

struct sn__uring {
    struct io_uring ring;
    int fd;               /* ring fd, the target for IORING_OP_MSG_RING */
    unsigned setup_flags; /* IORING_SETUP_* the ring was created with */
    unsigned features;    /* SN__URING_* */
    bool disabled;        /* created with R_DISABLED and not yet enabled */
};

/*
 * Creates a ring with `entries` SQEs (CQ twice that). Tries, in order (SI = SINGLE_ISSUER,
 * DT = DEFER_TASKRUN, COOP = COOP_TASKRUN, TF = TASKRUN_FLAG, SA = SUBMIT_ALL):
 * SI|DT|COOP|TF|SA, SI|DT|TF|SA, SI|DT, SI|COOP|TF|SA, COOP|TF|SA, and plain setup, moving on
 * only when the kernel says -EINVAL; records the result in u->setup_flags / u->features, and
 * probes MSG_RING, CQE_SKIP and buffer-ring support (on a throwaway ring, so the owner rule
 * is not disturbed). The calling thread becomes the owner unless SN__URING_DISABLED is given
 * (then R_DISABLED is used whenever SINGLE_ISSUER is). Returns 0 or a negative errno
 * (-ENOMEM, -EMFILE, -EPERM when io_uring is disabled by sysctl, ...). Any thread.
 */
int sn__uring_init(struct sn__uring *u, unsigned entries, unsigned flags);

/*
 * Makes the calling thread the owner of a ring created with SN__URING_DISABLED and enables
 * it. A no-op (returns 0) for a ring that is not disabled. Returns 0 or a negative errno.
 */
int sn__uring_enable(struct sn__uring *u);

/*
 * Owner only: registers the ring's fd with the calling thread (io_uring_register_ring_fd), so
 * each io_uring_enter skips the fd lookup and its reference count. Returns true when done; a
 * kernel without it changes nothing. Undo with sn__uring_unregister_fd on the same thread
 * before it ends (the registration belongs to the thread, and liburing would otherwise try to
 * undo it from whichever thread closes the ring).
 */
bool sn__uring_register_fd(struct sn__uring *u);

/* Owner only, the thread that registered: drops the registration (no-op without one). */
void sn__uring_unregister_fd(struct sn__uring *u);

/* Closes the ring. Any thread, once the owner no longer uses it. */
void sn__uring_exit(struct sn__uring *u);

/*
 * Owner only: submits pending SQEs and, without blocking, runs deferred task work so that
 * finished completions become visible in the CQ; makes no syscall when nothing is queued
 * and the kernel flags no pending work (TASKRUN_FLAG). Returns the number of SQEs submitted
 * or a negative errno (-EINTR / -EAGAIN / -EBUSY are transient: retry next turn).
 */
int sn__uring_submit_and_poll(struct sn__uring *u);

/*
 * Owner only: submits pending SQEs, then sleeps until `want` completions are in the CQ, or
 * until `min_wait_us` microseconds have passed and at least one is (from then on the first
 * completion ends the wait), or until `timeout_ns` (UINT64_MAX: none; the wait then ends after
 * a second at most, and the caller sleeps again). Completions already in the CQ when it is
 * called count. Needs SN__URING_MIN_WAIT. Returns 0, or a negative errno: -ETIME when the
 * timeout ended it, -EINTR, or -EINVAL when the kernel refused the minimum wait.
 */
int sn__uring_wait_batch(struct sn__uring *u, unsigned want, unsigned min_wait_us,
                         uint64_t timeout_ns);

/* A short human description of u->features ("single_issuer defer_taskrun ..."). */
const char *sn__uring_describe(const struct sn__uring *u, char *buf, size_t len);

/*
 * user_data values with the top byte 0xFE or 0xFF are the reactor's own (wake-ups, signals).
 * A loop passes every CQE whose user_data is reserved to the module that owns it and never
 * uses such values itself. Pointers never collide: user-space addresses are below 2^57.
 */
#define SN__UD_RESERVED_SHIFT 56
#define SN__UD_WAKE_MSG       0xFF00000000000001ull /* MSG_RING wake posted into the target */
#define SN__UD_WAKE_EVENTFD   0xFF00000000000002ull /* the target's armed eventfd read */
#define SN__UD_SIGNAL         0xFF00000000000003ull /* the signalfd read on core 0 */
#define SN__UD_WAKE_SENT_TAG  0xFE00000000000000ull /* | target waker pointer: sender side */

static inline bool sn__ud_is_reserved(uint64_t ud)
{
    return (ud >> SN__UD_RESERVED_SHIFT) >= 0xFE;
}

#endif
