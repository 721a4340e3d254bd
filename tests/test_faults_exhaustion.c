/*
 * Resource exhaustion (split from test_faults.c): a server out of file descriptors (sn-echo
 * with RLIMIT_NOFILE 64 keeps serving in waves).
 *
 * Exhaustion (library): a pool whose memory runs out aborts with a message (by design, as in
 * Seastar); pools grow on demand and give their objects back; a core that stops consuming
 * makes the sender's mesh overflow grow to SN_MESH_DEFAULT_OVERFLOW_LIMIT and then sn_send /
 * sn_submit_to fail with -ENOBUFS, after which everything accepted is still delivered in
 * order; a burst of SQEs far over the submission queue's size in one task is submitted
 * as the SQ fills and every completion arrives, even past the CQ's size (kernel overflow).
 */
#include <stdatomic.h>

#include "core/pool.h"
#include "reactor/core.h"
#include "reactor/io.h"
#include "reactor_util.h"
#include "support/server_proc.h"

#define WAIT_MS 10000

/* ---- exhaustion: file descriptors ------------------------------------------------------------ */

/*
 * sn-echo with RLIMIT_NOFILE 64 and 150 clients: accept fails with EMFILE once the server's
 * fds run out (the kernel keeps the rest in the listen backlog); libsn retries the accept
 * every 10 ms (reactor/net_listen.c), so as served clients leave, waiting ones are taken.
 * Every client is answered in the end, in waves, and the server never stops.
 */
Test(exhaustion, server_out_of_fds, .timeout = 120, .fini = su_reap_all)
{
    enum { N = 150 };
    struct su_server s;
    su_child_nofile = 64;
    su_start(&s, "echo", NULL);
    su_child_nofile = 0;
    int fd[N];
    bool answered[N] = {false};
    for (unsigned i = 0; i < N; i++) {
        cr_assert_geq(fd[i] = nu_connect(s.port), 0, "connect %u (the backlog takes it)", i);
        cr_assert_eq(nu_send_all(fd[i], "ping", 4), 0);
    }
    unsigned done = 0, waves = 0, first_wave = 0;
    for (uint64_t end = nu_now_ms() + 30000; done < N && nu_now_ms() < end; waves++) {
        usleep(200000);
        unsigned this_wave = 0;
        for (unsigned i = 0; i < N; i++) {
            char b[8];
            if (answered[i] || recv(fd[i], b, sizeof b, MSG_DONTWAIT) != 4)
                continue;
            answered[i] = true;
            close(fd[i]); /* frees one of the server's fds */
            this_wave++;
        }
        if (waves == 0)
            first_wave = this_wave;
        done += this_wave;
        cr_assert(su_alive(s.pid), "sn-echo runs out of fds without dying");
    }
    cr_log_info("fds: RLIMIT_NOFILE 64, %u clients: %u answered at first, all %u after %u "
                "waves of 200 ms",
                N, first_wave, done, waves);
    for (unsigned i = 0; i < N; i++)
        if (!answered[i])
            close(fd[i]);
    cr_assert_lt(first_wave, N, "the fd limit was reached");
    cr_assert_eq(done, N, "every client was served once fds were free again");
    su_assert_serving(&s, "running out of fds");
    su_stop_clean(&s);
}

/* ---- exhaustion: pools ------------------------------------------------------------------------ */

struct failing_alloc {
    unsigned left;
};

static void *fa_alloc(void *ctx, size_t size)
{
    struct failing_alloc *f = ctx;
    return f->left-- ? malloc(size) : NULL;
}

static void fa_free(void *ctx, void *p, size_t size)
{
    (void)ctx;
    (void)size;
    free(p);
}

/* A pool that cannot grow aborts with a message: by design (core/pool.h), never NULL. */
Test(exhaustion, pool_out_of_memory_aborts, .timeout = 60, .fini = su_reap_all)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t child = su_fork();
    if (child == 0) {
        dup2(p[1], STDERR_FILENO);
        struct failing_alloc f = {2};
        struct sn_allocator a = {fa_alloc, fa_free, &f};
        struct sn__pool pool;
        sn__pool_init(&pool, 64, 16, &a);
        for (unsigned i = 0; i < 1000; i++)
            sn__pool_get(&pool); /* 2 chunks of 16, then the third growth fails */
        _exit(0);
    }
    close(p[1]);
    char msg[256] = "";
    size_t n = 0;
    for (ssize_t r; n < sizeof msg - 1 && (r = read(p[0], msg + n, sizeof msg - 1 - n)) > 0;)
        n += (size_t)r;
    msg[n] = '\0';
    close(p[0]);
    int st = su_wait_exit(child, WAIT_MS);
    cr_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
              "out of pool memory aborts (status 0x%x)", (unsigned)st);
    cr_assert(strstr(msg, "libsn: out of memory growing a pool") != NULL, "message: %s", msg);
}

#define NPROMISES 100000u

struct pool_probe {
    struct sn_core_metrics before, peak, after;
    struct sn_promise **promises;
};
static struct pool_probe pool_probe;

/* The metrics are published once per loop turn: each step reads them a turn later. */
static struct sn_future *pool_after(void *arg, uint64_t value)
{
    (void)arg;
    (void)value;
    sn_metrics_core(0, &pool_probe.after);
    return SN_SUCCESS;
}

/* The settled futures are back in core 0's pool (as many in use as before, give or take 8). */
static bool pool_given_back(void *arg)
{
    (void)arg;
    struct sn_core_metrics m;
    sn_metrics_core(0, &m);
    return m.pool_in_use <= pool_probe.before.pool_in_use + 8;
}

static struct sn_future *pool_settle(void *arg, uint64_t value)
{
    (void)value;
    unsigned n = (unsigned)(uintptr_t)arg;
    sn_metrics_core(0, &pool_probe.peak);
    for (unsigned i = 0; i < n; i++)
        sn_promise_set(pool_probe.promises[i], i);
    free(pool_probe.promises);
    return sn_then(ru_poll_until(pool_given_back, NULL, 10000), pool_after, NULL);
}

static struct sn_future *pool_fill(void *arg, uint64_t value)
{
    (void)value;
    unsigned n = (unsigned)(uintptr_t)arg;
    sn_metrics_core(0, &pool_probe.before);
    pool_probe.promises = malloc(n * sizeof *pool_probe.promises);
    for (unsigned i = 0; i < n; i++) {
        struct sn_future *f;
        pool_probe.promises[i] = sn_promise_new(&f);
        sn_ignore(f);
    }
    return sn_then(sn_sleep(1000000), pool_settle, arg);
}

/* NPROMISES pending futures on core 0: the pool grows to hold them, then gets them back. */
static struct sn_future *pool_main(void *arg)
{
    (void)arg;
    uintptr_t n = SCALE(NPROMISES, 10);
    return sn_then(sn_sleep(1000000), pool_fill, (void *)n);
}

Test(exhaustion, pools_grow_and_give_back, .timeout = 60)
{
    memset(&pool_probe, 0, sizeof pool_probe);
    struct sn_config cfg = test_config(1);
    cr_assert_eq(sn_run(&cfg, pool_main, NULL), 0);
    unsigned n = SCALE(NPROMISES, 10);
    cr_log_info("pools: in use %llu -> %llu (capacity %llu) with %u pending promises -> %llu "
                "after they settled",
                (unsigned long long)pool_probe.before.pool_in_use,
                (unsigned long long)pool_probe.peak.pool_in_use,
                (unsigned long long)pool_probe.peak.pool_capacity, n,
                (unsigned long long)pool_probe.after.pool_in_use);
    cr_assert_geq(pool_probe.peak.pool_in_use, pool_probe.before.pool_in_use + n);
    cr_assert_geq(pool_probe.peak.pool_capacity, pool_probe.peak.pool_in_use);
    cr_assert_leq(pool_probe.after.pool_in_use, pool_probe.before.pool_in_use + 8,
                  "settled futures went back to the pool");
}

/* ---- exhaustion: a slow consumer core and the mesh overflow limit ------------------------- */

static struct ovf_probe {
    _Atomic bool release;
    _Atomic uint64_t handled;
    uint64_t accepted;
    int block_err, send_err, submit_err;
    struct sn_mesh_stats at_limit;
} ovf;

static void ovf_block(void *arg)
{
    (void)arg;
    uint64_t end = nu_now_ms() + 30000; /* never forever, even if the test breaks */
    while (!atomic_load(&ovf.release) && nu_now_ms() < end)
        ;
}

static void ovf_noop(void *arg)
{
    (void)arg;
    atomic_store_explicit(&ovf.handled, atomic_load_explicit(&ovf.handled, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void ovf_submit_done(void *arg, int err, uint64_t value)
{
    (void)arg;
    (void)value;
    ovf.submit_err = err;
}

static int ovf_ready(void *arg, uint64_t *value)
{
    (void)arg;
    *value = 0;
    return 0;
}

/* Core 1 has handled every message this core's sends were accepted with. */
static bool ovf_all_handled(void *arg)
{
    (void)arg;
    return atomic_load(&ovf.handled) == ovf.accepted;
}

static struct sn_future *ovf_main(void *arg)
{
    (void)arg;
    ovf.block_err = sn_send(1, ovf_block, NULL);
    /* Core 1 is stuck: its ring fills, then this core's overflow, then the limit. */
    uint64_t max = (uint64_t)SN_MESH_DEFAULT_OVERFLOW_LIMIT + SN_MESH_DEFAULT_RING_CAPACITY + 16;
    int rc = 0;
    while (ovf.accepted < max && (rc = sn_send(1, ovf_noop, NULL)) == 0)
        ovf.accepted++;
    ovf.send_err = rc;
    sn_mesh_stats(sn__core_self()->mesh, 0, &ovf.at_limit);
    sn_done(sn_call_on(1, ovf_ready, NULL), ovf_submit_done, NULL);
    atomic_store(&ovf.release, true);
    return ru_poll_until(ovf_all_handled, NULL, 30000);
}

Test(exhaustion, slow_core_overflow_limit_enobufs, .timeout = 120)
{
    if (SN_TEST_SLOW)
        cr_skip_test("4 Mi messages through the overflow: too slow under sanitizers");
    memset(&ovf, 0, sizeof ovf);
    struct sn_config cfg = test_config(2);
    uint64_t t0 = nu_now_ms();
    cr_assert_eq(sn_run(&cfg, ovf_main, NULL), 0);
    uint64_t took = nu_now_ms() - t0;
    cr_log_info("overflow: %llu messages accepted for a stuck core, then %s; overflow held %llu "
                "messages in %llu bytes (%.1f bytes each); all delivered, run took %llu ms",
                (unsigned long long)ovf.accepted, sn_strerror(ovf.send_err),
                (unsigned long long)ovf.at_limit.overflow_now,
                (unsigned long long)ovf.at_limit.overflow_bytes,
                (double)ovf.at_limit.overflow_bytes / (double)ovf.at_limit.overflow_now,
                (unsigned long long)took);
    cr_assert_eq(ovf.block_err, 0);
    cr_assert_eq(ovf.send_err, -ENOBUFS, "sn_send past the limit: %s", sn_strerror(ovf.send_err));
    cr_assert_eq(ovf.submit_err, -ENOBUFS, "sn_call_on past the limit: %s",
                 sn_strerror(ovf.submit_err));
    cr_assert_eq(ovf.at_limit.overflow_now, SN_MESH_DEFAULT_OVERFLOW_LIMIT);
    cr_assert_eq(ovf.at_limit.overflow_rejected, 1, "the refused send is counted");
    cr_assert_leq(ovf.accepted + 1, SN_MESH_DEFAULT_OVERFLOW_LIMIT + SN_MESH_DEFAULT_RING_CAPACITY,
                  "at most the ring plus the overflow limit (less the blocking message)");
    cr_assert_eq(atomic_load(&ovf.handled), ovf.accepted, "every accepted message ran");
}

/* ---- exhaustion: the io_uring submission queue --------------------------------------------- */

#define NSQE 5000u

static struct sq_probe {
    struct sn__io_op ops[NSQE];
    unsigned completed, got, nulls;
    int bad_res;
    bool off_core_null;
} *sq;

static void sq_done(struct sn__io_op *op, int res, uint32_t flags)
{
    (void)op;
    (void)flags;
    if (res != 0)
        sq->bad_res = res;
    sq->completed++;
}

/* Every NOP that got an SQE has completed. */
static bool sq_all_completed(void *arg)
{
    (void)arg;
    return sq->completed == sq->got;
}

/* NSQE NOPs in one task: 20 times the SQ (256 entries) and 10 times the CQ. */
static struct sn_future *sq_main(void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < NSQE; i++) {
        struct io_uring_sqe *sqe = sn__sqe_get();
        if (!sqe) {
            sq->nulls++;
            continue;
        }
        sn__io_op_init(&sq->ops[i], sq_done);
        io_uring_prep_nop(sqe);
        sn__sqe_bind(sqe, &sq->ops[i]);
        sq->got++;
    }
    return ru_poll_until(sq_all_completed, NULL, 20000);
}

Test(exhaustion, submission_queue_full, .timeout = 60)
{
    sq = calloc(1, sizeof *sq);
    sq->off_core_null = sn__sqe_get() == NULL;
    struct sn_config cfg = test_config(1);
    cr_assert_eq(sn_run(&cfg, sq_main, NULL), 0);
    cr_log_info("sq: %u SQEs asked in one task, %u got, %u NULL, %u completions", NSQE, sq->got,
                sq->nulls, sq->completed);
    cr_assert(sq->off_core_null, "sn__sqe_get off a core is NULL");
    cr_assert_eq(sq->nulls, 0, "a full SQ is submitted to make room, not reported as NULL");
    cr_assert_eq(sq->completed, sq->got, "every completion arrived, past the CQ's size too");
    cr_assert_eq(sq->bad_res, 0);
    free(sq);
}
