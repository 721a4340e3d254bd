/*
 * Fibers on a running reactor: a fiber as the app's main, 10^6 fibers spawned, awaited and
 * joined with every pool back where it was, every kind of future libsn makes awaited from a
 * fiber, and fibers on two cores ping-ponging through sn_await(sn_submit_to(...)).
 * Outcomes are recorded by the fibers (fiber_util.h) and asserted after sn_run returns.
 */
#include <criterion/criterion.h>
#include <sn.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "abort_util.h"
#include "core/sched.h"
#include "fiber_util.h"
#include "reactor_util.h"

static struct fiber_check fc;

static int run_fiber_main(unsigned ncores, sn_main_fn fn)
{
    struct sn_config cfg = test_config(ncores);
    fc = (struct fiber_check){0};
    return sn_run(&cfg, fn, NULL);
}

static void assert_checks(void)
{
    cr_assert_eq(fc.line, 0, "fiber check at line %d failed (saw %lld)", fc.line, fc.seen);
}

/* ---- main as a fiber ------------------------------------------------------------------- */

static int main_body(void *arg, uint64_t *value)
{
    (void)arg;
    FCHECK(&fc, sn_in_fiber(), 0);
    FCHECK(&fc, strcmp(sn_fiber_name(), "main") == 0, 0);
    uint64_t v = 0;
    int err = sn_await(sn_sleep(1000), &v);
    FCHECK(&fc, err == 0, err);
    *value = 7;
    return 0;
}

static struct sn_future *fiber_main(void *arg)
{
    (void)arg;
    struct sn_fiber_opts o = {.name = "main"};
    return sn_fiber_spawn(main_body, NULL, &o);
}

Test(fiber, a_fiber_is_the_apps_main)
{
    cr_assert_eq(run_fiber_main(1, fiber_main), 7);
    assert_checks();
    struct sn_core_metrics m;
    cr_assert_eq(sn_metrics_core(0, &m), 0);
    cr_assert_eq(m.fibers, 0);
    cr_assert_eq(m.fibers_spawned, 1);
    cr_assert_eq(m.fiber_stack_bytes, 0);
}

/* On a core but outside a fiber, sn_await fails at once and never blocks. */
static int deadlk_err;

static struct sn_future *await_in_main(void *arg)
{
    (void)arg;
    deadlk_err = sn_await(sn_sleep(1000000000ull), NULL); /* an hour, were it to block */
    return sn_ready(0);
}

Test(fiber, await_outside_a_fiber_fails_at_once)
{
    cr_assert_eq(run_fiber_main(1, await_in_main), 0);
    cr_assert_eq(deadlk_err, -EDEADLK);
}

/* Off a reactor core, spawning and awaiting are contract violations: they abort. */
static void spawn_off_core(void *arg)
{
    (void)arg;
    sn_ignore(sn_fiber_spawn(main_body, NULL, NULL));
}

static void await_off_core(void *arg)
{
    (void)arg;
    (void)sn_await(SN_SUCCESS, NULL);
}

Test(fiber, spawn_and_await_abort_off_a_core)
{
    cr_assert(au_aborts_with(spawn_off_core, NULL,
                             "libsn: sn_fiber_spawn called off a reactor core"));
    cr_assert(au_aborts_with(await_off_core, NULL, "libsn: sn_await called off a reactor core"));
}

/* ---- a million --------------------------------------------------------------------------- */

/* 10^6 plainly; 10^4 under the sanitizers (TSan tracks every fiber and switch). */
#define MILLION SCALE(1000000, 100)
#define WINDOW  1000

static struct {
    uint64_t pool_before, pool_after, live_after, stack_bytes_after, sum, joined;
} mil;

static int small_child(void *arg, uint64_t *value)
{
    /* Yield once, so the whole window is alive and suspended at the same time. */
    int err = sn_fiber_yield();
    *value = (uintptr_t)arg;
    return err;
}

static int million_driver(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    struct sn__sched *s = sn__tls_sched;
    static struct sn_future *futs[WINDOW];
    mil.pool_before = s->pool.in_use;
    for (uint64_t base = 0; base < (uint64_t)MILLION; base += WINDOW) {
        for (unsigned i = 0; i < WINDOW; i++)
            futs[i] = sn_fiber_spawn(small_child, (void *)(uintptr_t)(base + i), NULL);
        FCHECK(&fc, s->fibers.nlive == WINDOW + 1, s->fibers.nlive);
        for (unsigned i = 0; i < WINDOW; i++) {
            uint64_t v = 0;
            int err = sn_await(futs[i], &v);
            FCHECK(&fc, err == 0 && v == base + i, err ? err : (long long)v);
            mil.sum += v;
            mil.joined++;
        }
    }
    mil.pool_after = s->pool.in_use;
    mil.live_after = s->fibers.nlive;
    mil.stack_bytes_after = s->fibers.stack_bytes;
    return 0;
}

static struct sn_future *million_main(void *arg)
{
    (void)arg;
    return sn_fiber_spawn(million_driver, NULL, NULL);
}

Test(fiber, a_million_fibers_spawned_awaited_and_joined, .timeout = 300)
{
    mil = (typeof(mil)){0};
    cr_assert_eq(run_fiber_main(1, million_main), 0);
    assert_checks();
    uint64_t n = (uint64_t)MILLION / WINDOW * WINDOW;
    cr_assert_eq(mil.joined, n);
    cr_assert_eq(mil.sum, n * (n - 1) / 2);
    cr_assert_eq(mil.pool_after, mil.pool_before, "pool blocks %lu before, %lu after",
                 (unsigned long)mil.pool_before, (unsigned long)mil.pool_after);
    cr_assert_eq(mil.live_after, 1, "only the driver is alive");
    cr_assert_eq(mil.stack_bytes_after, SN_FIBER_DEFAULT_STACK);
    struct sn_core_metrics m;
    cr_assert_eq(sn_metrics_core(0, &m), 0);
    cr_assert_eq(m.fibers_spawned, n + 1);
    cr_assert_eq(m.fibers, 0);
}

/* ---- every kind of future --------------------------------------------------------------- */

static struct sn_future *remote_core_id(void *arg)
{
    (void)arg;
    return sn_ready(sn_core_id());
}

static int call_plus_one(void *arg, uint64_t *value)
{
    *value = (uintptr_t)arg + 1;
    return 0;
}

static void timer_fires(void *arg)
{
    sn_promise_set(arg, 99);
}

static int setter(void *arg, uint64_t *value)
{
    (void)value;
    int err = sn_fiber_sleep_ns(200000);
    sn_promise_set(arg, 1234);
    return err;
}

static struct sn_future *core_id_after(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    return sn_ready(sn_core_id());
}

static struct sn_future *remote_sleep_then_value(void *arg)
{
    return sn_then(sn_sleep(100000), core_id_after, arg);
}

static void *shard_init(void *arg, unsigned core)
{
    (void)arg;
    uint64_t *x = malloc(sizeof *x);
    if (x)
        *x = core + 10;
    return x;
}

static void shard_fini(void *instance, void *arg)
{
    (void)arg;
    free(instance);
}

static struct sn_future *shard_value(void *instance, void *arg)
{
    (void)arg;
    return sn_ready(*(uint64_t *)instance);
}

static int timers_and_promises(void)
{
    uint64_t v = 0, t0 = sn_now_ns();
    int err = sn_await(sn_sleep(1000000), &v);
    FCHECK(&fc, err == 0 && sn_now_ns() - t0 >= 1000000, err);
    FCHECK(&fc, sn_await(sn_yield(), &v) == 0, 0);
    t0 = sn_now_ns();
    FCHECK(&fc, sn_fiber_sleep_ns(500000) == 0 && sn_now_ns() - t0 >= 500000, 0);

    struct sn_future *f;
    struct sn_promise *p = sn_promise_new(&f);
    struct sn_timer t;
    sn_timer_init(&t, timer_fires, p);
    FCHECK(&fc, sn_timer_arm(&t, 300000) == 0, 0);
    err = sn_await(f, &v);
    FCHECK(&fc, err == 0 && v == 99, v);

    p = sn_promise_new(&f);
    sn_ignore(sn_fiber_spawn(setter, p, NULL));
    err = sn_await(f, &v);
    FCHECK(&fc, err == 0 && v == 1234, v);
    return 0;
}

static int cross_core(void)
{
    uint64_t v = 0;
    int err = sn_await(sn_submit_to(1, remote_core_id, NULL), &v);
    FCHECK(&fc, err == 0 && v == 1, err ? err : (long long)v);
    err = sn_await(sn_call_on(1, call_plus_one, (void *)41), &v);
    FCHECK(&fc, err == 0 && v == 42, v);
    err = sn_await(sn_submit_to(1, remote_sleep_then_value, NULL), &v);
    FCHECK(&fc, err == 0 && v == 1, v);
    err = sn_await(sn_submit_to(7, remote_core_id, NULL), &v);
    FCHECK(&fc, err == -EINVAL && v == 0, err);

    struct sn_future *both[2] = {sn_submit_to(0, remote_core_id, NULL),
                                 sn_submit_to(1, remote_core_id, NULL)};
    struct sn_result res[2];
    err = sn_await(sn_when_all(both, 2, res), &v);
    FCHECK(&fc, err == 0 && v == 2 && res[0].value == 0 && res[1].value == 1, v);
    err = sn_await(sn_map_reduce(remote_core_id, NULL, 100, sn_reduce_sum, NULL), &v);
    FCHECK(&fc, err == 0 && v == 101, v);
    err = sn_await(sn_invoke_on_all(remote_core_id, NULL), &v);
    FCHECK(&fc, err == 0 && v == 2, v);

    struct sn_sharded *sh;
    err = sn_await(sn_sharded_start(shard_init, shard_fini, NULL, &sh), &v);
    FCHECK(&fc, err == 0, err);
    err = sn_await(sn_sharded_invoke_on_all(sh, shard_value, NULL), &v);
    FCHECK(&fc, err == 0 && v == 2, v);
    FCHECK(&fc, *(uint64_t *)sn_sharded_local(sh) == 10, 0);
    err = sn_await(sn_sharded_stop(sh), &v);
    FCHECK(&fc, err == 0, err);
    return 0;
}

static int files(void)
{
    char path[] = "/tmp/sn_fiber_file_XXXXXX";
    int tmp = mkstemp(path);
    FCHECK(&fc, tmp >= 0, errno);
    close(tmp);
    uint64_t v = 0;
    int err = sn_await(sn_file_open(path, O_RDWR | O_TRUNC, 0600), &v);
    unlink(path);
    FCHECK(&fc, err == 0, err);
    int fd = (int)v;
    static const char text[] = "straight-line code";
    err = sn_await(sn_file_write(fd, text, sizeof text, 0), &v);
    FCHECK(&fc, err == 0 && v == sizeof text, err ? err : (long long)v);
    err = sn_await(sn_file_fsync(fd), &v);
    FCHECK(&fc, err == 0, err);
    struct sn_file_stat st;
    err = sn_await(sn_file_fstat(fd, &st), &v);
    FCHECK(&fc, err == 0 && st.size == sizeof text, st.size);
    char back[sizeof text] = {0};
    err = sn_await(sn_file_read(fd, back, sizeof back, 0), &v);
    FCHECK(&fc, err == 0 && v == sizeof text && memcmp(back, text, sizeof text) == 0, v);
    err = sn_await(sn_file_close(fd), &v);
    FCHECK(&fc, err == 0, err);
    err = sn_await(sn_file_open("/nonexistent/sn_fiber", O_RDONLY, 0), &v);
    FCHECK(&fc, err == -ENOENT, err);
    return 0;
}

static int closes;

static void count_close(struct sn_conn *conn, void *arg, int err)
{
    (void)conn, (void)arg, (void)err;
    closes++;
}

static const struct sn_conn_ops net_ops = {.on_close = count_close};

static int network(void)
{
    uint64_t v = 0;
    struct sn_listen_config lc = {.mode = SN_ACCEPT_ONE_CORE, .ops = &net_ops};
    int err = sn_await(sn_listen(&lc), &v);
    FCHECK(&fc, err == 0, err);
    struct sn_listener *l = (struct sn_listener *)(uintptr_t)v;
    struct sn_connect_config cc = {.port = sn_listener_port(l), .ops = &net_ops};
    err = sn_await(sn_connect(&cc), &v);
    FCHECK(&fc, err == 0, err);
    struct sn_conn *conn = (struct sn_conn *)(uintptr_t)v;
    FCHECK(&fc, sn_conn_write(conn, "hi", 2) == 0, 0);
    err = sn_await(sn_conn_close(conn), &v); /* settles once the socket is closed */
    FCHECK(&fc, err == 0, err);
    err = sn_await(sn_listener_close(l), &v);
    FCHECK(&fc, err == 0, err);
    cc.port = 1; /* nothing listens there */
    err = sn_await(sn_connect(&cc), &v);
    FCHECK(&fc, err == -ECONNREFUSED, err);
    return 0;
}

static int child_value(void *arg, uint64_t *value)
{
    *value = (uintptr_t)arg;
    return sn_fiber_yield();
}

static int every_kind(void *arg, uint64_t *value)
{
    (void)arg;
    int err;
    if ((err = timers_and_promises()) || (err = cross_core()) || (err = files()) ||
        (err = network()))
        return err;
    uint64_t v = 0;
    err = sn_await(sn_fiber_spawn(child_value, (void *)5, NULL), &v);
    FCHECK(&fc, err == 0 && v == 5, v);
    err = sn_await(sn_fiber_spawn(NULL, NULL, NULL), &v);
    FCHECK(&fc, err == -EINVAL, err);
    *value = 1;
    return 0;
}

static struct sn_future *every_main(void *arg)
{
    (void)arg;
    return sn_fiber_spawn(every_kind, NULL, NULL);
}

Test(fiber, every_kind_of_future_can_be_awaited, .timeout = 60)
{
    closes = 0;
    cr_assert_eq(run_fiber_main(2, every_main), 1);
    assert_checks();
    cr_assert_eq(closes, 2, "both ends of the connection closed");
}

/* ---- two cores ping-ponging -------------------------------------------------------------- */

#define ROUNDS SCALE(5000, 5)

static struct sn_future *echo_plus_one(void *arg)
{
    return sn_ready((uintptr_t)arg + 1);
}

/* On the far core: a fiber that asks the near core back before answering. */
static int bounce(void *arg, uint64_t *value)
{
    unsigned back = sn_core_id() ^ 1;
    return sn_await(sn_submit_to(back, echo_plus_one, arg), value);
}

static struct sn_future *spawn_bounce(void *arg)
{
    return sn_fiber_spawn(bounce, arg, NULL);
}

static uint64_t pong_rounds[2];

static int pinger(void *arg, uint64_t *value)
{
    (void)arg;
    unsigned far = sn_core_id() ^ 1;
    uint64_t x = 0;
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t v = 0;
        int err = sn_await(sn_submit_to(far, spawn_bounce, (void *)(uintptr_t)x), &v);
        FCHECK(&fc, err == 0 && v == x + 1, err ? err : (long long)v);
        x = v;
        pong_rounds[sn_core_id()]++;
    }
    *value = x;
    return 0;
}

static struct sn_future *start_pinger(void *arg)
{
    return sn_fiber_spawn(pinger, arg, NULL);
}

static struct sn_future *pingpong_main(void *arg)
{
    (void)arg;
    /* One pinger on each core, both at once. */
    return sn_invoke_on_all(start_pinger, NULL);
}

Test(fiber, fibers_on_two_cores_ping_pong, .timeout = 120)
{
    pong_rounds[0] = pong_rounds[1] = 0;
    cr_assert_eq(run_fiber_main(2, pingpong_main), 2);
    assert_checks();
    cr_assert_eq(pong_rounds[0], (uint64_t)ROUNDS);
    cr_assert_eq(pong_rounds[1], (uint64_t)ROUNDS);
    for (unsigned c = 0; c < 2; c++) {
        struct sn_core_metrics m;
        cr_assert_eq(sn_metrics_core(c, &m), 0);
        cr_assert_eq(m.fibers, 0);
        cr_assert_eq(m.fibers_spawned, (uint64_t)ROUNDS + 1, "core %u", c);
        cr_assert_eq(m.pool_in_use, 0, "core %u", c);
    }
}
