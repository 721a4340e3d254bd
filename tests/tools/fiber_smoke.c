/*
 * fiber_smoke: the fiber switch on its own, without Criterion or a reactor, so that it also
 * runs on another architecture under emulation (tests/tools/fiber_smoke_cross.sh builds it
 * for AArch64 with the core sources only and runs it under qemu-user). A scheduler bound to this
 * thread runs fibers that keep many integer and floating-point values live across switches
 * (the callee-saved registers the switch must preserve), await each other, yield in turn
 * and measure their stacks. Prints "fiber_smoke: ok" and exits 0, or says what failed.
 */
#include <sn.h>

#include <errno.h>
#include <stdio.h>

#include "core/sched.h"

static int failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fiber_smoke: %s:%d: %s\n", __FILE__, __LINE__, #cond);                \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* Many values live across each yield: the compiler keeps them in callee-saved registers. */
static int juggler(void *arg, uint64_t *value)
{
    uint64_t seed = (uintptr_t)arg;
    uint64_t a = seed, b = seed * 3, c = seed * 5, d = seed * 7, e = seed * 11, f = seed * 13;
    double x = (double)seed, y = x * 0.5, z = x * 0.25, w = x * 0.125, u = x + 1, v = x + 2;
    for (int i = 0; i < 100; i++) {
        if (sn_fiber_yield() != 0)
            return -EIO;
        a += 1, b += 2, c += 3, d += 4, e += 5, f += 6;
        x += 1.0, y += 0.5, z += 0.25, w += 0.125, u *= 1.0, v -= 1.0;
    }
    double got = x + y + z + w + u + v, dwant = 3.875 * (double)seed + 90.5;
    *value = a + b + c + d + e + f == seed * 40 + 2100 && got == dwant;
    return 0;
}

static int parent(void *arg, uint64_t *value)
{
    (void)arg;
    uint64_t ok = 0, v;
    for (uintptr_t i = 1; i <= 8; i++) {
        int err = sn_await(sn_fiber_spawn(juggler, (void *)i, NULL), &v);
        if (err)
            return err;
        ok += v;
    }
    *value = ok;
    return 0;
}

static uint64_t sum_doubles(uint64_t n)
{
    volatile double pad[64];
    for (int i = 0; i < 64; i++)
        pad[i] = (double)i;
    return n ? sum_doubles(n - 1) + (uint64_t)pad[63] : 0;
}

static int deep(void *arg, uint64_t *value)
{
    *value = sum_doubles((uintptr_t)arg);
    return 0;
}

static void record(void *arg, int err, uint64_t value)
{
    uint64_t *out = arg;
    out[0] = (uint64_t)(int64_t)err;
    out[1] = value;
}

int main(void)
{
    struct sn__sched sched;
    if (sn__sched_init(&sched, 0, NULL) != 0)
        return 1;
    sn__sched_bind(&sched, 1);

    /* Four parents at once, their children interleaving. */
    static uint64_t outs[4][2];
    for (int i = 0; i < 4; i++) {
        outs[i][0] = 1;
        sn_done(sn_fiber_spawn(parent, NULL, NULL), record, outs[i]);
    }
    sn__sched_run(&sched, 0);
    for (int i = 0; i < 4; i++)
        CHECK(outs[i][0] == 0 && outs[i][1] == 8);

    uint64_t out[2] = {1, 0};
    size_t used = 0;
    struct sn_fiber_opts o = {.flags = SN_FIBER_MEASURE_STACK, .stack_used = &used};
    sn_done(sn_fiber_spawn(deep, (void *)(uintptr_t)50, &o), record, out);
    sn__sched_run(&sched, 0);
    CHECK(out[0] == 0 && out[1] == 50 * 63);
    CHECK(used > 50 * 512 && used < SN_FIBER_DEFAULT_STACK);

    CHECK(sched.fibers.nlive == 0);
    CHECK(sched.pool.in_use == 0);
    sn__sched_bind(NULL, 0);
    sn__sched_destroy(&sched);
    if (failures)
        return 1;
    printf("fiber_smoke: ok (%s)\n",
#if defined(__aarch64__)
           "aarch64"
#else
           "x86-64"
#endif
    );
    return 0;
}
