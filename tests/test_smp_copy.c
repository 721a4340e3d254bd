/*
 * Typed cross-core messages (sn_submit_copy, sn_submit_copy_into) on a running reactor: every
 * core sends payloads of 0 B to 64 KiB to every core (itself included), the caller scribbles
 * over its request right after each call, and the target checks the bytes it sees (also after
 * a pause, through a pending future); results of many sizes come back into the caller's
 * buffer with nothing written past them; a shutdown with copies in flight settles every call
 * once and leaks nothing (ASan); the pools are back at zero after every run.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sn.h>
#include <stdlib.h>
#include <string.h>

#include "reactor_util.h"

/*
 * A leak found by LeakSanitizer at the exit of a Criterion worker is printed but does not
 * fail the test, so the shutdown test asks for a leak check itself (0: none found).
 */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAKS_FOUND() __lsan_do_recoverable_leak_check()
#else
#define LEAKS_FOUND() 0
#endif

static const size_t payload_sizes[] = {0,  1,   7,   8,   9,    16,   17,   40,
                                       64, 100, 208, 256, 1000, 4000, 5000, 65536};
#define NSIZES (sizeof payload_sizes / sizeof payload_sizes[0])

/* The byte at position j of payload number `seed`. */
static unsigned char pattern(uint64_t seed, size_t j)
{
    return (unsigned char)(seed * 131 + j * 31 + 7);
}

/* FNV-1a over the bytes and the length: what the target answers. */
static uint64_t digest(const unsigned char *p, size_t len)
{
    uint64_t h = 1469598103934665603ull ^ len;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* ---- payloads ----------------------------------------------------------------------- */

struct tally {
    uint64_t ok, bad, left;
    struct sn_promise *done;
} SN_CACHE_ALIGNED;
static struct tally tally[MAXC];
static unsigned rounds;

static bool aligned_for(const void *req, size_t len)
{
    return !req || (uintptr_t)req % (len > 8 ? 16 : 8) == 0;
}

/* The target: checks where the copy is, answers its digest (at once or after a pause). */
struct held {
    const unsigned char *req;
    size_t len;
};

static struct sn_future *answer_digest(void *arg, uint64_t v)
{
    (void)v;
    struct held *h = arg;
    uint64_t d = digest(h->req, h->len);
    free(h);
    return sn_ready(d);
}

static struct sn_future *check_payload(const void *req, size_t len, void *out, size_t cap)
{
    if (out || cap || (len && !req) || !aligned_for(req, len))
        return sn_failed(-EFAULT);
    if (len < 3 || ((const unsigned char *)req)[2] % 3 != 0)
        return sn_ready(digest(req, len));
    /* Read the copy again after a pause: it must stay valid until this future settles. */
    struct held *h = malloc(sizeof *h);
    h->req = req;
    h->len = len;
    return sn_then(sn_sleep(20000), answer_digest, h);
}

struct expect {
    uint64_t digest;
    unsigned core;
};

static void check_answer(void *arg, int err, uint64_t value)
{
    struct expect *e = arg;
    struct tally *t = &tally[sn_core_id()];
    if (!err && value == e->digest)
        t->ok++;
    else
        t->bad++;
    free(e);
    if (--t->left == 0)
        sn_promise_set(t->done, 0);
}

static struct sn_future *send_payloads(void *arg)
{
    (void)arg;
    unsigned me = sn_core_id(), n = sn_core_count();
    struct tally *t = &tally[me];
    struct sn_future *f;
    t->done = sn_promise_new(&f);
    t->left = (uint64_t)rounds * n * NSIZES;
    unsigned char *buf = malloc(65536);
    for (unsigned r = 0; r < rounds; r++)
        for (unsigned to = 0; to < n; to++)
            for (size_t s = 0; s < NSIZES; s++) {
                size_t len = payload_sizes[s];
                uint64_t seed = ((uint64_t)me << 40) | ((uint64_t)to << 24) | (r * NSIZES + s);
                for (size_t j = 0; j < len; j++)
                    buf[j] = pattern(seed, j);
                struct expect *e = malloc(sizeof *e);
                e->digest = digest(buf, len);
                e->core = to;
                struct sn_future *g = sn_submit_copy(to, check_payload, buf, len);
                memset(buf, 0xEE, len); /* the caller's buffer is its own again at once */
                sn_done(g, check_answer, e);
            }
    free(buf);
    return f;
}

static struct sn_future *zero(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    return sn_ready(0);
}

static struct sn_future *payload_main(void *arg)
{
    (void)arg;
    return sn_then(sn_invoke_on_all(send_payloads, NULL), zero, NULL);
}

static void expect_pools_at_zero(unsigned ncores)
{
    for (unsigned c = 0; c < ncores; c++) {
        struct sn_core_metrics m;
        cr_assert_eq(sn_metrics_core(c, &m), 0);
        cr_expect_eq(m.pool_in_use, 0, "core %u: %lu pooled blocks still in use", c,
                     (unsigned long)m.pool_in_use);
        cr_expect_eq(m.cancelled, 0);
    }
}

static void run_payloads(unsigned ncores, unsigned r)
{
    struct sn_config cfg = test_config(ncores);
    memset(tally, 0, sizeof tally);
    rounds = r;
    cr_assert_eq(sn_run(&cfg, payload_main, NULL), 0);
    for (unsigned c = 0; c < ncores; c++) {
        cr_expect_eq(tally[c].bad, 0, "core %u: %lu wrong answers", c, (unsigned long)tally[c].bad);
        cr_expect_eq(tally[c].ok, (uint64_t)r * ncores * NSIZES);
    }
    expect_pools_at_zero(ncores);
}

Test(smp_copy, payloads_1_core, .timeout = 60)
{
    run_payloads(1, SCALE(20, 4));
}

Test(smp_copy, payloads_2_cores, .timeout = 60)
{
    run_payloads(2, SCALE(20, 4));
}

Test(smp_copy, payloads_4_cores, .timeout = 60)
{
    run_payloads(4, SCALE(10, 5));
}

/* ---- results ------------------------------------------------------------------------ */

static const size_t result_sizes[] = {0,  1,   7,   8,    9,    15,   16,   17,   63,
                                      64, 100, 200, 1000, 4000, 4096, 5000, 65536};
#define NRESULTS (sizeof result_sizes / sizeof result_sizes[0])
#define GUARD    32

struct result_req {
    uint64_t seed;
    uint32_t size;  /* bytes to write */
    uint32_t claim; /* the count to answer (size, or more to provoke -EMSGSIZE) */
    uint32_t later; /* write after a pause */
};

struct pending_write {
    struct result_req q;
    unsigned char *out;
};

static struct sn_future *write_now(void *arg, uint64_t v)
{
    (void)v;
    struct pending_write *w = arg;
    for (size_t j = 0; j < w->q.size; j++)
        w->out[j] = pattern(w->q.seed, j);
    uint32_t claim = w->q.claim;
    free(w);
    return sn_ready(claim);
}

static struct sn_future *make_result(const void *req, size_t len, void *out, size_t cap)
{
    struct result_req q;
    if (len != sizeof q || !aligned_for(req, len))
        return sn_failed(-EFAULT);
    memcpy(&q, req, sizeof q);
    if (q.size > cap || (cap && !out) || (out && (uintptr_t)out % 16))
        return sn_failed(-EFAULT);
    struct pending_write *w = malloc(sizeof *w);
    w->q = q;
    w->out = out;
    if (!q.later)
        return write_now(w, 0);
    return sn_then(sn_sleep(20000), write_now, w);
}

struct result_check {
    unsigned char *buf; /* cap + GUARD bytes */
    size_t cap;
    struct result_req q;
};

static void check_result(void *arg, int err, uint64_t value)
{
    struct result_check *rc = arg;
    struct tally *t = &tally[sn_core_id()];
    bool good;
    if (rc->q.claim > rc->cap) {
        /* Too big a count: -EMSGSIZE and the caller's buffer untouched. */
        good = err == -EMSGSIZE;
        for (size_t j = 0; j < rc->cap + GUARD; j++)
            good = good && rc->buf[j] == 0xAB;
    } else {
        good = !err && value == rc->q.size;
        for (size_t j = 0; good && j < rc->q.size; j++)
            good = rc->buf[j] == pattern(rc->q.seed, j);
        for (size_t j = rc->q.size; good && j < rc->cap + GUARD; j++)
            good = rc->buf[j] == 0xAB;
    }
    if (good)
        t->ok++;
    else
        t->bad++;
    free(rc->buf);
    free(rc);
    if (--t->left == 0)
        sn_promise_set(t->done, 0);
}

/* One call per result size and target, in three shapes: exact cap, roomier cap, too big. */
static struct sn_future *ask_results(void *arg)
{
    (void)arg;
    unsigned me = sn_core_id(), n = sn_core_count();
    struct tally *t = &tally[me];
    struct sn_future *f;
    t->done = sn_promise_new(&f);
    t->left = (uint64_t)rounds * n * NRESULTS * 3;
    for (unsigned r = 0; r < rounds; r++)
        for (unsigned to = 0; to < n; to++)
            for (size_t s = 0; s < NRESULTS; s++)
                for (unsigned shape = 0; shape < 3; shape++) {
                    size_t size = result_sizes[s];
                    struct result_check *rc = malloc(sizeof *rc);
                    rc->cap = shape == 1 ? size + 24 : size;
                    rc->buf = malloc(rc->cap + GUARD);
                    memset(rc->buf, 0xAB, rc->cap + GUARD);
                    rc->q = (struct result_req){
                        .seed = ((uint64_t)me << 40) | (r * 1000 + s * 3 + shape),
                        .size = (uint32_t)size,
                        .claim = (uint32_t)(shape == 2 ? size + 1 : size),
                        .later = (r + s) % 2,
                    };
                    sn_done(sn_submit_copy_into(to, make_result, &rc->q, sizeof rc->q, rc->buf,
                                                rc->cap),
                            check_result, rc);
                }
    return f;
}

static struct sn_future *result_main(void *arg)
{
    (void)arg;
    return sn_then(sn_invoke_on_all(ask_results, NULL), zero, NULL);
}

static void run_results(unsigned ncores, unsigned r)
{
    struct sn_config cfg = test_config(ncores);
    memset(tally, 0, sizeof tally);
    rounds = r;
    cr_assert_eq(sn_run(&cfg, result_main, NULL), 0);
    for (unsigned c = 0; c < ncores; c++) {
        cr_expect_eq(tally[c].bad, 0, "core %u: %lu wrong results", c, (unsigned long)tally[c].bad);
        cr_expect_eq(tally[c].ok, (uint64_t)r * ncores * NRESULTS * 3);
    }
    expect_pools_at_zero(ncores);
}

Test(smp_copy, results_of_many_sizes_2_cores, .timeout = 60)
{
    run_results(2, SCALE(10, 5));
}

Test(smp_copy, results_of_many_sizes_4_cores, .timeout = 60)
{
    run_results(4, SCALE(4, 4));
}

/* ---- errors ------------------------------------------------------------------------- */

static int errs[6];

static void rec_err(void *arg, int err, uint64_t v)
{
    (void)v;
    *(int *)arg = err;
}

static struct sn_future *unused_fn(const void *req, size_t len, void *out, size_t cap)
{
    (void)req, (void)len, (void)out, (void)cap;
    return SN_SUCCESS;
}

static struct sn_future *error_main(void *arg)
{
    (void)arg;
    char b[8] = {0};
    sn_done(sn_submit_copy(sn_core_count(), unused_fn, b, 1), rec_err, &errs[0]);
    sn_done(sn_submit_copy(0, unused_fn, NULL, 1), rec_err, &errs[1]);
    sn_done(sn_submit_copy_into(0, unused_fn, b, 1, NULL, 4), rec_err, &errs[2]);
    sn_done(sn_submit_copy(0, unused_fn, b, (size_t)2 << 30), rec_err, &errs[3]);
    sn_done(sn_submit_copy_into(0, unused_fn, b, 1, b, (size_t)2 << 30), rec_err, &errs[4]);
    sn_done(sn_submit_copy(sn_core_count() - 1, unused_fn, NULL, 0), rec_err, &errs[5]);
    return sn_then(sn_sleep(1000000), zero, NULL);
}

Test(smp_copy, bad_arguments_fail_without_calling, .timeout = 30)
{
    struct sn_config cfg = test_config(2);
    memset(errs, 1, sizeof errs);
    cr_assert_eq(sn_run(&cfg, error_main, NULL), 0);
    cr_expect_eq(errs[0], -EINVAL);
    cr_expect_eq(errs[1], -EINVAL);
    cr_expect_eq(errs[2], -EINVAL);
    cr_expect_eq(errs[3], -EMSGSIZE);
    cr_expect_eq(errs[4], -EMSGSIZE);
    cr_expect_eq(errs[5], 0);
    expect_pools_at_zero(2);
}

/* ---- shutdown with copies in flight ------------------------------------------------- */

#define HANG_MAX 4096
struct hang {
    struct sn_promise *p[HANG_MAX]; /* never settled: these calls wait for the run's end */
    unsigned n;
} SN_CACHE_ALIGNED;
static struct hang hangs[MAXC];
static uint64_t settled_ok[MAXC], settled_cancelled[MAXC], settled_other[MAXC];
static unsigned inflight_calls;

static struct sn_future *hang_or_answer(const void *req, size_t len, void *out, size_t cap)
{
    unsigned kind = len ? ((const unsigned char *)req)[0] % 3 : 0;
    if (out)
        memset(out, 0x5A, cap); /* written now, but the call will fail: never copied back */
    if (kind == 0) {
        struct hang *h = &hangs[sn_core_id()];
        struct sn_future *f;
        struct sn_promise *p = sn_promise_new(&f);
        if (h->n < HANG_MAX)
            h->p[h->n++] = p;
        return f;
    }
    if (kind == 1)
        return sn_then(sn_sleep(50000000), zero, NULL); /* cancelled by the stop */
    return sn_ready(len);
}

struct inflight {
    unsigned char *out; /* must never be written: every call with one hangs */
    size_t cap;
};

static void count_settled(void *arg, int err, uint64_t v)
{
    (void)v;
    struct inflight *w = arg;
    unsigned me = sn_core_id();
    if (!err)
        settled_ok[me]++;
    else if (err == -ECANCELED)
        settled_cancelled[me]++;
    else
        settled_other[me]++;
    if (w) {
        for (size_t j = 0; j < w->cap; j++)
            if (w->out[j] != 0xAB)
                settled_other[me]++;
        free(w->out);
        free(w);
    }
}

static struct sn_future *flood_then_stop(void *arg)
{
    (void)arg;
    unsigned me = sn_core_id(), n = sn_core_count();
    static const size_t sizes[] = {8, 64, 1000, 65536};
    unsigned char *buf = malloc(65536);
    for (unsigned i = 0; i < inflight_calls; i++) {
        unsigned to = (me + 1 + i) % n;
        size_t len = sizes[i % 4];
        memset(buf, (int)(i % 3), len);
        if (i % 3 == 0 && i % 2 == 0) {
            struct inflight *w = malloc(sizeof *w);
            w->cap = 256;
            w->out = malloc(w->cap);
            memset(w->out, 0xAB, w->cap);
            sn_done(sn_submit_copy_into(to, hang_or_answer, buf, len, w->out, w->cap),
                    count_settled, w);
        } else {
            sn_done(sn_submit_copy(to, hang_or_answer, buf, len), count_settled, NULL);
        }
    }
    free(buf);
    if (me == 0)
        sn_stop(5); /* while the calls are still in the rings */
    return SN_SUCCESS;
}

static struct sn_future *inflight_main(void *arg)
{
    (void)arg;
    sn_ignore(sn_invoke_on_all(flood_then_stop, NULL));
    return sn_when_stopped();
}

Test(smp_copy, shutdown_with_copies_in_flight, .timeout = 60)
{
    for (unsigned ncores = 2; ncores <= 4; ncores += 2) {
        struct sn_config cfg = test_config(ncores);
        memset(hangs, 0, sizeof hangs);
        memset(settled_ok, 0, sizeof settled_ok);
        memset(settled_cancelled, 0, sizeof settled_cancelled);
        memset(settled_other, 0, sizeof settled_other);
        inflight_calls = SCALE(3000, 3);
        cr_assert_eq(sn_run(&cfg, inflight_main, NULL), 5);
        uint64_t hung = 0, ok = 0, cancelled = 0;
        for (unsigned c = 0; c < ncores; c++) {
            cr_expect_eq(settled_other[c], 0, "core %u: %lu unexpected outcomes", c,
                         (unsigned long)settled_other[c]);
            hung += hangs[c].n;
            ok += settled_ok[c];
            cancelled += settled_cancelled[c];
        }
        /* Every call settled exactly once; the hung ones at the end, as -ECANCELED. */
        cr_expect_eq(ok + cancelled, (uint64_t)ncores * inflight_calls);
        cr_expect_geq(cancelled, hung);
    }
    cr_expect_eq(LEAKS_FOUND(), 0, "copies leaked (see the LeakSanitizer report above)");
}
