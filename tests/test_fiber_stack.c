/*
 * Fiber stacks from the reactor's pool: an overflow into the guard region is reported by
 * name and aborts (in a child process), other segfaults keep their default behaviour, call
 * chains that come near the limit run, chosen sizes are honoured, and many idle fibers do
 * not cost a memory mapping each (vm.max_map_count).
 */
#include <criterion/criterion.h>
#include <sn.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/sched.h"
#include "reactor/fiber_stack.h"
#include "fiber_util.h"
#include "reactor_util.h"

static struct fiber_check fc;

/* Burns about 512 bytes of stack per level. */
static __attribute__((noinline)) uint64_t dig(uint64_t levels)
{
    volatile char frame[480];
    frame[0] = (char)levels;
    frame[sizeof frame - 1] = 1;
    if (levels == 0)
        return (uint64_t)frame[0];
    return dig(levels - 1) + (uint64_t)frame[sizeof frame - 1];
}

/* ---- overflow ---------------------------------------------------------------------------- */

static volatile uint64_t forever = UINT64_MAX;

static int overflower(void *arg, uint64_t *value)
{
    (void)arg;
    *value = dig(forever);
    return 0;
}

static struct sn_future *overflow_main(void *arg)
{
    struct sn_fiber_opts o = {.name = "deep-diver", .stack_size = (uintptr_t)arg};
    return sn_fiber_spawn(overflower, NULL, &o);
}

static int run_overflow(void *arg)
{
    struct sn_config cfg = test_config(2);
    return sn_run(&cfg, overflow_main, arg);
}

static void expect_overflow(size_t size, const char *msg)
{
    char err[8192];
    int status = run_in_child(run_overflow, (void *)(uintptr_t)size, err, sizeof err);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %#x, stderr:\n%s", status,
              err);
    cr_assert(strstr(err, msg), "no \"%s\" in stderr:\n%s", msg, err);
}

Test(fiber_stack, overflow_is_reported_and_aborts, .timeout = 60)
{
    expect_overflow(0, "libsn: fiber deep-diver on core 0 overflowed its 65536-byte stack\n");
    expect_overflow(100000, "libsn: fiber deep-diver on core 0 overflowed its 102400-byte "
                            "stack\n");
}

/* A fault that is not an overflow stays what it was: the process dies of SIGSEGV. */
static int wild_writer(void *arg, uint64_t *value)
{
    (void)value;
    *(volatile int *)arg = 1;
    return 0;
}

static struct sn_future *segv_main(void *arg)
{
    (void)arg;
    /* Not NULL, or UBSan would report it before it faults. */
    return sn_fiber_spawn(wild_writer, (void *)(uintptr_t)64, NULL);
}

static int run_segv(void *arg)
{
    (void)arg;
    struct sn_config cfg = test_config(1);
    return sn_run(&cfg, segv_main, NULL);
}

Test(fiber_stack, other_segfaults_keep_their_default_behaviour, .timeout = 60)
{
    char err[8192];
    int status = run_in_child(run_segv, NULL, err, sizeof err);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* The sanitizer's handler was there before libsn's: it reports the fault and exits. */
    cr_assert(strstr(err, "SEGV"), "status %#x, stderr:\n%s", status, err);
#else
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "status %#x, stderr:\n%s", status,
              err);
#endif
    cr_assert(!strstr(err, "overflowed"), "stderr:\n%s", err);
}

/* ---- near the limit ---------------------------------------------------------------------- */

static size_t used_small, used_large, used_deep;
static uint64_t deep_levels;

static int measured_dig(void *arg, uint64_t *value)
{
    *value = dig((uintptr_t)arg);
    return 0;
}

static int near_limit(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    /* Calibrate the cost of a level in this build (sanitizers make frames larger). */
    struct sn_fiber_opts o = {.flags = SN_FIBER_MEASURE_STACK, .stack_used = &used_small};
    FCHECK(&fc, sn_await(sn_fiber_spawn(measured_dig, (void *)8, &o), NULL) == 0, 0);
    o.stack_used = &used_large;
    FCHECK(&fc, sn_await(sn_fiber_spawn(measured_dig, (void *)24, &o), NULL) == 0, 0);
    size_t per_level = (used_large - used_small) / 16;
    FCHECK(&fc, per_level >= 480, per_level);
    /* Then go to 90% of the default stack. */
    size_t target = SN_FIBER_DEFAULT_STACK * 9 / 10;
    deep_levels = (target - used_small) / per_level + 8;
    o.stack_used = &used_deep;
    int err = sn_await(sn_fiber_spawn(measured_dig, (void *)(uintptr_t)deep_levels, &o), NULL);
    FCHECK(&fc, err == 0, err);
    return 0;
}

static struct sn_future *near_main(void *arg)
{
    (void)arg;
    return sn_fiber_spawn(near_limit, NULL, NULL);
}

Test(fiber_stack, call_chains_near_the_limit_run, .timeout = 60)
{
    fc = (struct fiber_check){0};
    struct sn_config cfg = test_config(1);
    cr_assert_eq(sn_run(&cfg, near_main, NULL), 0);
    cr_assert_eq(fc.line, 0, "check at line %d failed (saw %lld)", fc.line, fc.seen);
    cr_assert_geq(used_deep, SN_FIBER_DEFAULT_STACK * 85 / 100, "%zu bytes used", used_deep);
    cr_assert_lt(used_deep, SN_FIBER_DEFAULT_STACK, "%zu bytes used", used_deep);
    struct sn_core_metrics m;
    cr_assert_eq(sn_metrics_core(0, &m), 0);
    cr_assert_eq(m.fiber_stack_high_water, used_deep);
}

/* A 1 MiB stack takes what would overflow the default one many times over. */
static struct sn_future *big_main(void *arg)
{
    (void)arg;
    struct sn_fiber_opts o = {.stack_size = 1u << 20};
    return sn_fiber_spawn(measured_dig, (void *)(uintptr_t)(SN_TEST_SLOW ? 600 : 1500), &o);
}

Test(fiber_stack, a_chosen_size_is_honoured, .timeout = 60)
{
    struct sn_config cfg = test_config(1);
    cr_assert_geq(sn_run(&cfg, big_main, NULL), 0);
}

/* ---- many idle fibers, few mappings ---------------------------------------------------------- */

#define IDLE SCALE(40000, 8)

static struct {
    unsigned n;
    uint64_t waiting, maps_before, maps_during, stack_bytes;
} idle;

static uint64_t count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    uint64_t n = 0;
    int ch;
    if (!f)
        return 0;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static int idler(void *arg, uint64_t *value)
{
    idle.waiting++;
    return sn_await(arg, value);
}

static int idle_driver(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    static struct sn_promise *gates[IDLE];
    static struct sn_future *joins[IDLE];
    /* With mprotect guards (kernels before 6.13) the map count caps fibers near 32,000. */
    idle.n = strcmp(sn__stack_guard_kind(), "mprotect") == 0 ? IDLE / 4 : IDLE;
    idle.maps_before = count_maps();
    for (unsigned i = 0; i < idle.n; i++) {
        struct sn_future *g;
        gates[i] = sn_promise_new(&g);
        joins[i] = sn_fiber_spawn(idler, g, NULL);
    }
    while (idle.waiting < idle.n)
        FCHECK(&fc, sn_fiber_yield() == 0, idle.waiting);
    idle.maps_during = count_maps();
    idle.stack_bytes = sn__tls_sched->fibers.stack_bytes;
    for (unsigned i = 0; i < idle.n; i++)
        sn_promise_set(gates[i], i);
    uint64_t v;
    int err = sn_await(sn_when_all(joins, idle.n, NULL), &v);
    FCHECK(&fc, err == 0 && v == idle.n, err);
    return 0;
}

static struct sn_future *idle_main(void *arg)
{
    (void)arg;
    return sn_fiber_spawn(idle_driver, NULL, NULL);
}

Test(fiber_stack, many_idle_fibers_share_few_mappings, .timeout = 120)
{
    fc = (struct fiber_check){0};
    memset(&idle, 0, sizeof idle);
    struct sn_config cfg = test_config(1);
    cr_assert_eq(sn_run(&cfg, idle_main, NULL), 0);
    cr_assert_eq(fc.line, 0, "check at line %d failed (saw %lld)", fc.line, fc.seen);
    cr_assert_eq(idle.waiting, idle.n);
    cr_assert_eq(idle.stack_bytes, (uint64_t)(idle.n + 1) * SN_FIBER_DEFAULT_STACK);
    if (strcmp(sn__stack_guard_kind(), "mprotect") == 0)
        cr_skip_test("guards made with mprotect: a mapping split per stack (kernel before 6.13)");
#if defined(__SANITIZE_THREAD__)
    cr_skip_test("TSan maps memory of its own for every fiber context");
#endif
    /* Guards made with mprotect would split a mapping per stack: 2 * n more lines. */
    cr_assert_lt(idle.maps_during - idle.maps_before, 1000, "%lu mappings before, %lu during",
                 (unsigned long)idle.maps_before, (unsigned long)idle.maps_during);
}
