/*
 * Internal: the scheduler slice of a reactor thread (sn_config.sched_slice_us).
 */
#ifndef SN_REACTOR_SCHED_SLICE_H
#define SN_REACTOR_SCHED_SLICE_H

#include <stdint.h>

/*
 * Calling thread only: asks the kernel for a scheduling slice of `us` microseconds for this
 * thread (sched_setattr of sched_runtime, keeping its policy, nice value and flags; Linux
 * 6.12 and later use it as the thread's EEVDF slice and clamp it to 100 us..100 ms, older
 * kernels ignore it). 0; -EINVAL for a thread outside the fair classes (SCHED_OTHER,
 * SCHED_BATCH: a real-time or SCHED_IDLE thread is left as it is); or a negative errno from
 * the kernel (the thread keeps its slice then).
 */
int sn__sched_slice_set(unsigned us);

/*
 * Calling thread only: the slice the kernel reports for this thread in nanoseconds
 * (sched_getattr's sched_runtime; 0 on kernels without custom slices, or with none set), or
 * a negative errno.
 */
int64_t sn__sched_slice_get(void);

#endif
