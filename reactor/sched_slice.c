/*
 * The scheduler slice of a reactor thread: see reactor/sched_slice.h.
 *
 * Why: a polling core calls sched_yield() every few microseconds so that a thread sharing its
 * CPU runs at once (reactor/loop.c). Under EEVDF a yield while another task is runnable moves
 * the yielder's virtual deadline one slice later, so against a task that never sleeps (a
 * build, a batch job) a polling reactor gets a few microseconds per slice of the other: get90d1
 * fell to 0.43x memcached's requests/s with a nice-10 busy loop on each CPU
 * (docs/PERFORMANCE.md, fifth session). A short slice makes each yield cost that much less.
 */
#include "reactor/sched_slice.h"

#include <errno.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's struct sched_attr (linux/sched/types.h clashes with <sched.h>). */
struct slice_attr {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
    uint32_t sched_util_min;
    uint32_t sched_util_max;
};

int sn__sched_slice_set(unsigned us)
{
    struct slice_attr a = {0};
    if (syscall(SYS_sched_getattr, 0, &a, (unsigned)sizeof a, 0) != 0)
        return -errno;
    /* Only the fair classes take a slice; a real-time or deadline thread keeps its policy. */
    if (a.sched_policy != SCHED_OTHER && a.sched_policy != SCHED_BATCH)
        return -EINVAL;
    a.size = sizeof a; /* the policy, nice value and flags as they are: only the slice moves */
    a.sched_runtime = (uint64_t)us * 1000u;
    if (syscall(SYS_sched_setattr, 0, &a, 0) != 0)
        return -errno;
    return 0;
}

int64_t sn__sched_slice_get(void)
{
    struct slice_attr a = {0};
    if (syscall(SYS_sched_getattr, 0, &a, (unsigned)sizeof a, 0) != 0)
        return -errno;
    return (int64_t)a.sched_runtime;
}
