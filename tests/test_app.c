/*
 * The app skeleton (sn_app_run) and partitioners made before the cores start: exit codes
 * (0 after SIGTERM and SIGINT, in a child process; sn_stop's code; 1 after a failed start or
 * stop), the stop hook running while every core still answers cross-core calls and never at
 * the same time as start, a second signal not waiting for a stuck stop hook, a start that
 * settles at once not ending the server; sn_config_core_count agreeing with the run, and a
 * partitioner built in main used by every core through sn_key_owner.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <sn.h>
#include <stdlib.h>
#include <string.h>

#include "reactor_util.h"
#include "support/server_proc.h"

/* ---- what the apps below record -------------------------------------------------------- */

static struct {
    int seq;        /* next event number */
    int started_at; /* event numbers (0: did not happen) */
    int start_done_at;
    int stop_at;
    uint64_t stop_cores; /* cores that answered a cross-core call made in the stop hook */
    unsigned ncores;
} ev;

static int event(void)
{
    return ++ev.seq;
}

static struct sn_future *zero(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    return sn_ready(0);
}

static struct sn_future *one(void *arg)
{
    (void)arg;
    return sn_ready(1);
}

static struct sn_future *after_start_sleep(void *arg, uint64_t v)
{
    (void)v;
    ev.start_done_at = event();
    return arg ? sn_failed((int)(intptr_t)arg) : SN_SUCCESS;
}

/* Starts (after 20 ms), asks to stop at once (the hook must wait for the start), or fails. */
static struct sn_future *slow_start(void *arg)
{
    ev.started_at = event();
    ev.ncores = sn_core_count();
    sn_stop(9); /* requested while starting */
    return sn_then(sn_sleep(20000000), after_start_sleep, arg);
}

static struct sn_future *stop_counted(void *arg, uint64_t v)
{
    (void)arg;
    ev.stop_cores = v;
    return SN_SUCCESS;
}

/* The stop hook: every core must still answer. */
static struct sn_future *stop_hook(void *arg)
{
    (void)arg;
    ev.stop_at = event();
    return sn_then(sn_map_reduce(one, NULL, 0, sn_reduce_sum, NULL), stop_counted, NULL);
}

static struct sn_future *failing_stop_hook(void *arg)
{
    (void)arg;
    ev.stop_at = event();
    return sn_failed(-EIO);
}

Test(app, stop_requested_while_starting_waits_for_start, .timeout = 30)
{
    struct sn_config cfg = test_config(3);
    memset(&ev, 0, sizeof ev);
    struct sn_app app = {.name = "test-app", .start = slow_start, .stop = stop_hook};
    cr_assert_eq(sn_app_run(&cfg, &app), 9, "sn_stop's code");
    cr_expect_eq(ev.started_at, 1);
    cr_expect_eq(ev.start_done_at, 2, "start settled before the stop hook ran");
    cr_expect_eq(ev.stop_at, 3);
    cr_expect_eq(ev.stop_cores, 3, "every core answered a call made in the stop hook");
}

Test(app, failed_start_runs_the_stop_hook_and_exits_1, .timeout = 30)
{
    struct sn_config cfg = test_config(2);
    memset(&ev, 0, sizeof ev);
    struct sn_app app = {.name = "test-app",
                         .start = slow_start,
                         .stop = stop_hook,
                         .arg = (void *)(intptr_t)-EADDRINUSE};
    cr_assert_eq(sn_app_run(&cfg, &app), 1);
    cr_expect_eq(ev.start_done_at, 2);
    cr_expect_eq(ev.stop_at, 3, "the stop hook cleans up after a failed start too");
    cr_expect_eq(ev.stop_cores, 2);
}

Test(app, failed_stop_exits_1, .timeout = 30)
{
    struct sn_config cfg = test_config(2);
    memset(&ev, 0, sizeof ev);
    struct sn_app app = {.start = slow_start, .stop = failing_stop_hook};
    cr_assert_eq(sn_app_run(&cfg, &app), 1);
    cr_expect_eq(ev.stop_at, 3);
}

Test(app, bad_apps_and_configs_exit_1, .timeout = 30)
{
    struct sn_config cfg = test_config(2);
    cr_expect_eq(sn_app_run(&cfg, NULL), 1);
    struct sn_app no_start = {.name = "test-app"};
    cr_expect_eq(sn_app_run(&cfg, &no_start), 1);
    struct sn_app app = {.name = "test-app", .start = slow_start};
    cfg.cpuset = "100000";
    cr_expect_eq(sn_app_run(&cfg, &app), 1);
}

/* A start that settles at once does not end the server: it runs until sn_stop. */
static uint64_t t_start, t_end;

static void stop_later(void *arg, int err, uint64_t v)
{
    (void)arg, (void)err, (void)v;
    t_end = sn_now_ns();
    sn_stop(3);
}

static struct sn_future *instant_start(void *arg)
{
    (void)arg;
    t_start = sn_now_ns();
    sn_done(sn_sleep(50000000), stop_later, NULL);
    return SN_SUCCESS;
}

Test(app, start_settling_at_once_keeps_the_server_running, .timeout = 30)
{
    struct sn_config cfg = test_config(2);
    struct sn_app app = {.start = instant_start};
    t_start = t_end = 0;
    cr_assert_eq(sn_app_run(&cfg, &app), 3);
    cr_expect_geq(t_end - t_start, 50000000, "the run lasted until the timer's sn_stop");
}

/* ---- signals, in a child process ------------------------------------------------------- */

static int pipe_w = -1;

static void tell(char c)
{
    if (write(pipe_w, &c, 1) != 1)
        _exit(120);
}

static struct sn_future *signal_start(void *arg)
{
    (void)arg;
    tell('S');
    return SN_SUCCESS;
}

static struct sn_future *signal_stop(void *arg)
{
    tell('T');
    if (arg) { /* stuck: only a second signal ends the run */
        struct sn_future *f;
        (void)sn_promise_new(&f);
        return f;
    }
    return sn_then(sn_map_reduce(one, NULL, 0, sn_reduce_sum, NULL), zero, NULL);
}

/* Reads one byte from fd within ms: the byte, or -1. */
static int read_byte(int fd, unsigned ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;
    if (poll(&p, 1, (int)ms) != 1 || read(fd, &c, 1) != 1)
        return -1;
    return c;
}

/* Runs the app in a child, sends `sig` once it started (twice when `stuck`): wait status. */
static int run_child_with_signal(int sig, bool stuck, int *stop_seen)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = su_fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        pipe_w = fds[1];
        struct sn_config cfg = test_config(2);
        struct sn_app app = {.name = "test-child",
                             .start = signal_start,
                             .stop = signal_stop,
                             .arg = stuck ? &pipe_w : NULL};
        _exit(sn_app_run(&cfg, &app));
    }
    close(fds[1]);
    cr_assert_eq(read_byte(fds[0], 30000), 'S', "the child's app started");
    kill(pid, sig);
    *stop_seen = read_byte(fds[0], 30000) == 'T';
    if (stuck)
        kill(pid, sig);
    int status = su_wait_exit(pid, 30000);
    close(fds[0]);
    return status;
}

static void expect_exit_0(int sig, bool stuck)
{
    int stop_seen = 0;
    int status = run_child_with_signal(sig, stuck, &stop_seen);
    cr_assert_neq(status, -1, "the child ended within 30 s of the signal");
    cr_expect(stop_seen, "the stop hook ran");
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit code 0 (status 0x%x)",
              (unsigned)status);
}

Test(app, sigterm_exits_0, .timeout = 60, .fini = su_reap_all)
{
    expect_exit_0(SIGTERM, false);
}

Test(app, sigint_exits_0, .timeout = 60, .fini = su_reap_all)
{
    expect_exit_0(SIGINT, false);
}

Test(app, second_signal_does_not_wait_for_a_stuck_stop_hook, .timeout = 60, .fini = su_reap_all)
{
    expect_exit_0(SIGTERM, true);
}

/* ---- partitioners made before the cores start ------------------------------------------ */

#define NKEYS 1000
static uint32_t expected_owner[NKEYS], expected_owner_u64[NKEYS];
static uint64_t owner_wrong[MAXC], owner_checked[MAXC];
static unsigned cores_seen;

static void key_of(unsigned i, char *buf, size_t *len)
{
    *len = (size_t)snprintf(buf, 32, "key:%u", i * 7919u);
}

static struct sn_future *check_owners(void *arg)
{
    (void)arg;
    unsigned me = sn_core_id();
    for (unsigned i = 0; i < NKEYS; i++) {
        char buf[32];
        size_t len;
        key_of(i, buf, &len);
        unsigned o = sn_key_owner(buf, len), u = sn_key_owner_u64(i);
        owner_wrong[me] +=
            o != expected_owner[i] || u != expected_owner_u64[i] || o >= sn_core_count();
        owner_checked[me]++;
    }
    return SN_SUCCESS;
}

static struct sn_future *owners_start(void *arg)
{
    (void)arg;
    cores_seen = sn_core_count();
    return sn_then(sn_invoke_on_all(check_owners, NULL), zero, NULL);
}

static struct sn_future *owners_then_stop(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    sn_stop(0);
    return SN_SUCCESS;
}

static struct sn_future *owners_app_start(void *arg)
{
    return sn_then(owners_start(arg), owners_then_stop, NULL);
}

static void expect_owners(struct sn_partition *p, unsigned n)
{
    for (unsigned i = 0; i < NKEYS; i++) {
        char buf[32];
        size_t len;
        key_of(i, buf, &len);
        expected_owner[i] = sn_partition(p, buf, len);
        expected_owner_u64[i] = sn_partition_u64(p, i);
    }
    memset(owner_wrong, 0, sizeof owner_wrong);
    memset(owner_checked, 0, sizeof owner_checked);
    (void)n;
}

static void check_owner_results(unsigned n)
{
    cr_expect_eq(cores_seen, n, "sn_config_core_count said %u, the run had %u", n, cores_seen);
    for (unsigned c = 0; c < n; c++) {
        cr_expect_eq(owner_checked[c], NKEYS);
        cr_expect_eq(owner_wrong[c], 0, "core %u: %lu keys owned elsewhere", c,
                     (unsigned long)owner_wrong[c]);
    }
}

Test(app, partitioner_built_in_main_is_every_cores, .timeout = 30)
{
    struct sn_config cfg = test_config(3);
    int n = sn_config_core_count(&cfg);
    cr_assert_eq(n, 3);
    struct sn_partition *p;
    char err[128];
    cr_assert_eq(sn_partition_from_string("jump", (uint32_t)n, err, sizeof err, &p), 0, "%s", err);
    expect_owners(p, (unsigned)n);
    struct sn_app app = {.name = "test-app", .start = owners_app_start, .partition = p};
    cr_assert_eq(sn_app_run(&cfg, &app), 0);
    check_owner_results((unsigned)n);
    sn_partition_destroy(p);
}

Test(app, default_partitioner_is_a_hash_over_the_cores, .timeout = 30)
{
    struct sn_config cfg = test_config(4);
    int n = sn_config_core_count(&cfg);
    cr_assert_eq(n, 4);
    struct sn_partition *p;
    struct sn_partition_config pc = {.kind = SN_PARTITION_HASH, .n = (uint32_t)n};
    cr_assert_eq(sn_partition_create(&pc, NULL, 0, &p), 0);
    expect_owners(p, (unsigned)n);
    cr_assert_eq(sn_run(&cfg, owners_start, NULL), 0, "plain sn_run has sn_key_owner too");
    check_owner_results((unsigned)n);
    sn_partition_destroy(p);
    cr_expect_eq(sn_key_owner("x", 1), SN_NO_CORE, "off a core");
}

Test(app, partitioner_that_does_not_fit_fails_the_run, .timeout = 30)
{
    struct sn_config cfg = test_config(2);
    struct sn_partition *p, *rr;
    cr_assert_eq(sn_partition_from_string("hash", 3, NULL, 0, &p), 0);
    cr_assert_eq(sn_partition_from_string("rr", 2, NULL, 0, &rr), 0);
    struct sn_app app = {.name = "test-app", .start = owners_app_start, .partition = p};
    cr_expect_eq(sn_app_run(&cfg, &app), 1, "3 partitions for 2 cores");
    app.partition = rr;
    cr_expect_eq(sn_app_run(&cfg, &app), 1, "round-robin keeps a cursor per caller");
    sn_partition_destroy(p);
    sn_partition_destroy(rr);
}

Test(app, config_core_count_resolves_like_the_run, .timeout = 30)
{
    struct sn_config cfg;
    sn_config_init(&cfg);
    int all = sn_config_core_count(&cfg);
    cr_expect_geq(all, 1);
    cr_expect_eq(sn_config_core_count(NULL), all);
    cfg.cpuset = "0";
    cr_expect_eq(sn_config_core_count(&cfg), 1);
    cfg.cpuset = "100000";
    cr_expect_eq(sn_config_core_count(&cfg), -EINVAL);
    cfg.cpuset = NULL;
    cfg.unpinned = true;
    cfg.smp = 7;
    cr_expect_eq(sn_config_core_count(&cfg), 7, "unpinned: more cores than CPUs");
}
