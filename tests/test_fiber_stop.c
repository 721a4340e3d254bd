/*
 * Fibers at shutdown (include/sn/fiber.h, "Shutdown"): 10,000 fibers blocked in every kind
 * of wait when the reactor stops get -ECANCELED and return, except those waiting for a
 * future nothing can settle, which are abandoned with their futures failed; the run ends
 * without waiting for the fiber timeout. A fiber that keeps running past the timeout is
 * reported by name and abandoned.
 */
#include <criterion/criterion.h>
#include <sn.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/sched.h"
#include "fiber_util.h"
#include "reactor_util.h"

/* ---- 10,000 fibers waiting ---------------------------------------------------------------- */

enum { K_SLEEP, K_CALL, K_PROMISE, K_YIELD, K_IO, NKINDS };

#define PER_CORE SCALE(5000, 5)

static _Atomic uint64_t started; /* both cores: read by the stopper on core 0 */

static struct {
    uint64_t returned[2][NKINDS];
    uint64_t settled[2][NKINDS];
    uint64_t wrong_err[2];
    int pipes[2][2];
    uint64_t run_ns;
} st;

/* Stays pending on the far core for ever (the promise is never settled). */
static struct sn_future *never_settles(void *arg)
{
    (void)arg;
    struct sn_future *f;
    (void)sn_promise_new(&f);
    return f;
}

static int waiter(void *arg, uint64_t *value)
{
    (void)value;
    unsigned kind = (unsigned)(uintptr_t)arg, core = sn_core_id();
    static char buf[2][64];
    struct sn_future *f;
    int err = 0;
    atomic_fetch_add(&started, 1);
    switch (kind) {
    case K_SLEEP: err = sn_fiber_sleep_ns(3600ull * 1000000000ull); break;
    case K_CALL: err = sn_await(sn_submit_to(core ^ 1, never_settles, NULL), NULL); break;
    case K_PROMISE:
        (void)sn_promise_new(&f);
        err = sn_await(f, NULL);
        break;
    case K_YIELD:
        while ((err = sn_fiber_yield()) == 0)
            ;
        break;
    case K_IO:
        err = sn_await(sn_file_read(st.pipes[core][0], buf[core], 1, SN_FILE_POS), NULL);
        break;
    }
    st.returned[core][kind]++;
    return err;
}

static void settled(void *arg, int err, uint64_t value)
{
    (void)value;
    unsigned kind = (unsigned)(uintptr_t)arg, core = sn_core_id();
    st.settled[core][kind]++;
    if (err != -ECANCELED)
        st.wrong_err[core]++;
}

static struct sn_future *spawn_waiters(void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < PER_CORE; i++) {
        struct sn_fiber_opts o = {.name = "waiter"};
        sn_done(sn_fiber_spawn(waiter, (void *)(uintptr_t)(i % NKINDS), &o), settled,
                (void *)(uintptr_t)(i % NKINDS));
    }
    return NULL;
}

static int stopper(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    int err = sn_await(sn_invoke_on_all(spawn_waiters, NULL), NULL);
    if (err)
        return err;
    /* Poll until every waiter on both cores is blocked (bounded: the test has a timeout). */
    while (atomic_load(&started) < 2 * (uint64_t)PER_CORE)
        if ((err = sn_fiber_sleep_ns(1000000)) < 0)
            return err;
    st.run_ns = sn_now_ns();
    sn_stop(3);
    return 0;
}

static struct sn_future *stop_main(void *arg)
{
    (void)arg;
    sn_ignore(sn_fiber_spawn(stopper, NULL, NULL));
    return sn_when_stopped(); /* the run ends by sn_stop */
}

/* Fibers of kind k on one core (spawn_waiters hands kinds out in turn). */
static uint64_t per_kind(int k)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < PER_CORE; i++)
        n += i % NKINDS == (unsigned)k;
    return n;
}

Test(fiber_stop, ten_thousand_waiting_fibers_unwind_or_are_abandoned, .timeout = 120)
{
    memset(&st, 0, sizeof st);
    atomic_store(&started, 0);
    for (int c = 0; c < 2; c++) {
        cr_assert_eq(pipe(st.pipes[c]), 0);
    }
    struct sn_config cfg = test_config(2);
    cr_assert_eq(sn_run(&cfg, stop_main, NULL), 3);
    uint64_t took = sn_now_ns() - st.run_ns;
    for (int c = 0; c < 2; c++) {
        close(st.pipes[c][0]);
        close(st.pipes[c][1]);
        uint64_t total = 0;
        for (int k = 0; k < NKINDS; k++) {
            uint64_t want = per_kind(k);
            cr_assert_eq(st.settled[c][k], want, "core %d kind %d: %lu futures settled", c, k,
                         (unsigned long)st.settled[c][k]);
            uint64_t ret = k == K_PROMISE ? 0 : want; /* abandoned: never returned */
            cr_assert_eq(st.returned[c][k], ret, "core %d kind %d: %lu fibers returned", c, k,
                         (unsigned long)st.returned[c][k]);
            total += st.settled[c][k];
        }
        cr_assert_eq(total, PER_CORE);
        cr_assert_eq(st.wrong_err[c], 0, "every future failed with -ECANCELED");
        struct sn_core_metrics m;
        cr_assert_eq(sn_metrics_core((unsigned)c, &m), 0);
        cr_assert_eq(m.fibers, 0);
        cr_assert_eq(m.fiber_stack_bytes, 0);
    }
    /* Waiting fibers never hold the shutdown up to the fiber timeout (5 s by default). */
    cr_assert_lt(took, (uint64_t)SN_CONFIG_DEFAULT_FIBER_STOP_TIMEOUT_MS * 1000000u,
                 "the stop took %lu ms", (unsigned long)(took / 1000000u));
}

/* ---- a fiber that does not stop ----------------------------------------------------------- */

static int stubborn(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    for (;;)
        (void)sn_fiber_yield(); /* ignores -ECANCELED */
    return 0;
}

static int stop_soon(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    int err = sn_fiber_sleep_ns(1000000);
    sn_stop(5);
    return err;
}

static struct sn_future *stubborn_main(void *arg)
{
    (void)arg;
    struct sn_fiber_opts o = {.name = "stubborn"};
    sn_ignore(sn_fiber_spawn(stubborn, NULL, &o));
    sn_ignore(sn_fiber_spawn(stop_soon, NULL, NULL));
    return sn_when_stopped();
}

static int run_stubborn(void *arg)
{
    (void)arg;
    struct sn_config cfg = test_config(1);
    cfg.fiber_stop_timeout_ms = 100;
    return sn_run(&cfg, stubborn_main, NULL);
}

Test(fiber_stop, a_fiber_running_past_the_timeout_is_reported_and_abandoned, .timeout = 60)
{
    char err[4096];
    int status = run_in_child(run_stubborn, NULL, err, sizeof err);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 5, "status %#x, stderr:\n%s", status,
              err);
    cr_assert(strstr(err, "libsn: core 0: fiber stubborn still alive 100 ms after the stop "
                          "began: abandoned without unwinding"),
              "stderr:\n%s", err);
}

/* ---- what cannot settle, reported by name -------------------------------------------------- */

static int lonely(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    struct sn_future *f;
    (void)sn_promise_new(&f);
    return sn_await(f, NULL); /* nothing will ever settle f */
}

static void lonely_done(void *arg, int err, uint64_t value)
{
    (void)arg, (void)value;
    /* Abandoned fibers' futures fail with -ECANCELED: say so through the exit code. */
    if (err == -ECANCELED)
        fprintf(stderr, "lonely's future failed with ECANCELED\n");
}

static struct sn_future *lonely_main(void *arg)
{
    (void)arg;
    struct sn_fiber_opts o = {.name = "lonely"};
    sn_done(sn_fiber_spawn(lonely, NULL, &o), lonely_done, NULL);
    sn_ignore(sn_fiber_spawn(stop_soon, NULL, NULL));
    return sn_when_stopped();
}

static int run_lonely(void *arg)
{
    (void)arg;
    struct sn_config cfg = test_config(1);
    return sn_run(&cfg, lonely_main, NULL);
}

Test(fiber_stop, a_fiber_waiting_for_ever_is_reported_at_the_end, .timeout = 60)
{
    char err[4096];
    int status = run_in_child(run_lonely, NULL, err, sizeof err);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 5, "status %#x, stderr:\n%s", status,
              err);
    cr_assert(strstr(err, "libsn: core 0: fiber lonely waits for a future that can no longer "
                          "settle: abandoned without unwinding"),
              "stderr:\n%s", err);
    cr_assert(strstr(err, "lonely's future failed with ECANCELED"), "stderr:\n%s", err);
}
