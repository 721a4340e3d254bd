/*
 * --sched-slice-us / sn_config.sched_slice_us: every reactor thread asks the kernel for that
 * scheduler slice (reactor/sched_slice.c). Read back with sched_getattr on each core's own
 * thread. Kernels without custom slices (before Linux 6.12) report none for any thread: the
 * test first checks that a plain thread can set and read one, and is skipped otherwise.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sn.h>

#define SLICE_US 300u
#define NCORES   3u

struct attr { /* the kernel's struct sched_attr */
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
    uint32_t sched_util_min, sched_util_max;
};

static int64_t thread_slice_ns(void)
{
    struct attr a = {0};
    if (syscall(SYS_sched_getattr, 0, &a, (unsigned)sizeof a, 0) != 0)
        return -1;
    return (int64_t)a.sched_runtime;
}

static int nice_of_thread(void)
{
    return getpriority(PRIO_PROCESS, 0);
}

/* On a thread of its own: can this kernel give a thread a slice and report it? */
static void *probe(void *arg)
{
    struct attr a = {.size = sizeof a,
                     .sched_policy = SCHED_OTHER,
                     .sched_nice = nice_of_thread(),
                     .sched_runtime = SLICE_US * 1000u};
    *(bool *)arg =
        syscall(SYS_sched_setattr, 0, &a, 0) == 0 && thread_slice_ns() == (int64_t)SLICE_US * 1000;
    return NULL;
}

static bool kernel_has_slices(void)
{
    bool ok = false;
    pthread_t t;
    if (pthread_create(&t, NULL, probe, &ok) != 0)
        return false;
    pthread_join(t, NULL);
    return ok;
}

static int64_t seen[NCORES];
static int seen_nice[NCORES];

static struct sn_future *record(void *arg)
{
    (void)arg;
    seen[sn_core_id()] = thread_slice_ns();
    seen_nice[sn_core_id()] = nice_of_thread();
    return SN_SUCCESS;
}

static struct sn_future *record_all(void *arg)
{
    return sn_invoke_on_all(record, arg);
}

static void run_cores(unsigned slice_us)
{
    struct sn_config cfg;
    sn_config_init(&cfg);
    cfg.smp = NCORES;
    cfg.unpinned = true;
    cfg.sched_slice_us = slice_us;
    for (unsigned i = 0; i < NCORES; i++)
        seen[i] = -2;
    /* main's value, the core count from sn_invoke_on_all, is the exit code */
    cr_assert_eq(sn_run(&cfg, record_all, NULL), (int)NCORES);
}

Test(sched_slice, every_core_thread_gets_the_slice, .timeout = 60)
{
    if (!kernel_has_slices())
        cr_skip_test("this kernel has no custom scheduler slices (Linux 6.12+)");
    run_cores(SLICE_US);
    for (unsigned i = 0; i < NCORES; i++) {
        cr_expect_eq(seen[i], (int64_t)SLICE_US * 1000, "core %u's slice: %lld ns", i,
                     (long long)seen[i]);
        cr_expect_eq(seen_nice[i], nice_of_thread(), "core %u's nice value changed", i);
    }
}

Test(sched_slice, zero_leaves_the_kernel_default, .timeout = 60)
{
    int64_t before = thread_slice_ns(); /* this thread never asked for one */
    run_cores(0);
    for (unsigned i = 0; i < NCORES; i++)
        cr_expect_eq(seen[i], before, "core %u's slice: %lld ns, a plain thread's %lld", i,
                     (long long)seen[i], (long long)before);
}
