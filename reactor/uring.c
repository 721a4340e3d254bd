/*
 * Per-core io_uring set-up with the best flags the kernel accepts: see reactor/uring.h.
 */
#include "reactor/uring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Setup ladder, best first. Each step is tried only if the previous one got -EINVAL. */
#define SI   IORING_SETUP_SINGLE_ISSUER
#define DT   IORING_SETUP_DEFER_TASKRUN
#define COOP IORING_SETUP_COOP_TASKRUN
#define TF   IORING_SETUP_TASKRUN_FLAG
#define SA   IORING_SETUP_SUBMIT_ALL
static const unsigned ladder[] = {
    SI | DT | COOP | TF | SA, SI | DT | TF | SA, SI | DT, SI | COOP | TF | SA, COOP | TF | SA, 0,
};
#undef SI
#undef DT
#undef COOP
#undef TF
#undef SA
#define LADDER_LEN (sizeof ladder / sizeof ladder[0])

/* Linux 6.12's name, missing from older headers (liburing 2.3 calls min_wait_usec `pad`). */
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif
#define WAIT_BATCH_MAX_NS 1000000000ull /* a batch wait without a timeout ends after 1 s */

static bool env_true(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static unsigned features_of(unsigned setup)
{
    unsigned f = 0;
    if (setup & IORING_SETUP_SINGLE_ISSUER)
        f |= SN__URING_SINGLE_ISSUER;
    if (setup & IORING_SETUP_DEFER_TASKRUN)
        f |= SN__URING_DEFER_TASKRUN;
    if (setup & IORING_SETUP_COOP_TASKRUN)
        f |= SN__URING_COOP_TASKRUN;
    if (setup & IORING_SETUP_SUBMIT_ALL)
        f |= SN__URING_SUBMIT_ALL;
    if (setup & IORING_SETUP_TASKRUN_FLAG)
        f |= SN__URING_TASKRUN_FLAG;
    return f;
}

/* Registers and drops a one-entry provided buffer ring on `r`: true when the kernel has them. */
static bool probe_buf_ring(struct io_uring *r)
{
    size_t len = 4096;
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return false;
    struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)mem, .ring_entries = 1, .bgid = 0};
    io_uring_buf_ring_init(mem);
    bool ok = io_uring_register_buf_ring(r, &reg, 0) == 0;
    if (ok)
        io_uring_unregister_buf_ring(r, 0);
    munmap(mem, len);
    return ok;
}

/* Op support is probed on a throwaway plain ring: registering on the real ring would make
 * the calling thread its owner (or be refused with -EEXIST) under SINGLE_ISSUER. */
static unsigned probe_ops(void)
{
    struct io_uring tmp;
    unsigned f = 0;

    if (io_uring_queue_init(2, &tmp, 0) < 0)
        return 0;
    struct io_uring_probe *p = io_uring_get_probe_ring(&tmp);
    if (p) {
        if (io_uring_opcode_supported(p, IORING_OP_MSG_RING))
            f |= SN__URING_MSG_RING;
        io_uring_free_probe(p);
    }
    if (probe_buf_ring(&tmp))
        f |= SN__URING_BUF_RING;
    io_uring_queue_exit(&tmp);
    return f;
}

int sn__uring_init(struct sn__uring *u, unsigned entries, unsigned flags)
{
    bool fallback = (flags & SN__URING_FORCE_FALLBACK) || env_true("SN_URING_FALLBACK");
    int r = -EINVAL;

    memset(u, 0, sizeof *u);
    u->fd = -1;
    for (size_t i = fallback ? LADDER_LEN - 1 : 0; i < LADDER_LEN; i++) {
        struct io_uring_params p = {.flags = ladder[i] | IORING_SETUP_CQSIZE,
                                    .cq_entries = entries * 2};
        /* Without SINGLE_ISSUER there is no owner to choose, so no need to start disabled. */
        if ((flags & SN__URING_DISABLED) && (ladder[i] & IORING_SETUP_SINGLE_ISSUER))
            p.flags |= IORING_SETUP_R_DISABLED;
        r = io_uring_queue_init_params(entries, &u->ring, &p);
        if (r == 0) {
            u->setup_flags = p.flags;
            u->features = features_of(p.flags);
            if (p.features & IORING_FEAT_CQE_SKIP)
                u->features |= SN__URING_CQE_SKIP;
            if (p.features & IORING_FEAT_MIN_TIMEOUT)
                u->features |= SN__URING_MIN_WAIT;
            if (i == LADDER_LEN - 1)
                u->features |= SN__URING_FALLBACK;
            u->disabled = p.flags & IORING_SETUP_R_DISABLED;
            break;
        }
        if (r != -EINVAL)
            return r;
    }
    if (r < 0) {
        memset(u, 0, sizeof *u);
        u->fd = -1;
        return r;
    }
    u->fd = u->ring.ring_fd;
    u->features |= probe_ops();
    return 0;
}

int sn__uring_enable(struct sn__uring *u)
{
    if (!u->disabled)
        return 0;
    /* Raw syscall: liburing 2.3 declares io_uring_enable_rings but does not export it. */
    if (syscall(__NR_io_uring_register, u->fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
        return -errno;
    u->disabled = false;
    return 0;
}

bool sn__uring_register_fd(struct sn__uring *u)
{
    return io_uring_register_ring_fd(&u->ring) == 1;
}

void sn__uring_unregister_fd(struct sn__uring *u)
{
    if (u->ring.enter_ring_fd != u->ring.ring_fd)
        io_uring_unregister_ring_fd(&u->ring);
}

void sn__uring_exit(struct sn__uring *u)
{
    if (u->fd >= 0)
        io_uring_queue_exit(&u->ring);
    u->fd = -1;
}

int sn__uring_submit_and_poll(struct sn__uring *u)
{
    /* With DEFER/COOP_TASKRUN finished requests wait as task work until the owner enters the
     * kernel; submit_and_get_events enters with GETEVENTS, which runs it without waiting.
     * TASKRUN_FLAG lets us skip that syscall when nothing is queued either way, which keeps
     * busy-polling turns syscall-free. Plain rings post completions by themselves. */
    if (!(u->features & (SN__URING_DEFER_TASKRUN | SN__URING_COOP_TASKRUN)))
        return io_uring_submit(&u->ring);
    if ((u->features & SN__URING_TASKRUN_FLAG) && io_uring_sq_ready(&u->ring) == 0 &&
        !(IO_URING_READ_ONCE(*u->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
        return 0;
    return io_uring_submit_and_get_events(&u->ring);
}

/* Hands the SQEs liburing has queued to the kernel (liburing's own flush is internal);
 * returns how many the kernel has not consumed yet. */
static unsigned flush_sq(struct io_uring *ring)
{
    struct io_uring_sq *sq = &ring->sq;
    unsigned tail = sq->sqe_tail;
    if (sq->sqe_head != tail) {
        sq->sqe_head = tail;
        io_uring_smp_store_release(sq->ktail, tail);
    }
    return tail - IO_URING_READ_ONCE(*sq->khead);
}

int sn__uring_wait_batch(struct sn__uring *u, unsigned want, unsigned min_wait_us,
                         uint64_t timeout_ns)
{
    struct io_uring *ring = &u->ring;
    if (timeout_ns > WAIT_BATCH_MAX_NS)
        timeout_ns = WAIT_BATCH_MAX_NS; /* the minimum wait needs a timeout to switch to */
    struct __kernel_timespec ts = {.tv_sec = (long long)(timeout_ns / 1000000000u),
                                   .tv_nsec = (long long)(timeout_ns % 1000000000u)};
    struct io_uring_getevents_arg arg = {.pad = min_wait_us, .ts = (uint64_t)(uintptr_t)&ts};
    unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
    int fd = ring->ring_fd;
    if (ring->enter_ring_fd != ring->ring_fd) {
        fd = ring->enter_ring_fd;
        flags |= IORING_ENTER_REGISTERED_RING;
    }
    unsigned submit = flush_sq(ring);
    long r = syscall(__NR_io_uring_enter, fd, submit, want, flags, &arg, sizeof arg);
    return r < 0 ? -errno : 0;
}

const char *sn__uring_describe(const struct sn__uring *u, char *buf, size_t len)
{
    static const char *const names[] = {"single_issuer", "defer_taskrun", "coop_taskrun",
                                        "submit_all",    "msg_ring",      "buf_ring",
                                        "cqe_skip",      "fallback",      "taskrun_flag",
                                        "min_wait"};
    size_t used = 0;

    if (len)
        buf[0] = '\0';
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(u->features & (1u << i)) || used >= len)
            continue;
        int w = snprintf(buf + used, len - used, "%s%s", used ? " " : "", names[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    return buf;
}
