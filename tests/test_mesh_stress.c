/*
 * Mesh stress runs on plain pthreads (no pinning), split from test_mesh.c: all-to-all with
 * tiny rings, and sleepers that block on an eventfd and must be woken by the wake callback.
 * A lost message or wake-up shows as a failed check or as a stall caught by a generous
 * deadline (never a speed assertion).
 */
#include "mesh_util.h"

/* ---------------------------------------------------------------- stress: all to all */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint32_t rng_next(uint32_t *s)
{
    uint32_t x = *s; /* xorshift32 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* Hang detection only: generous, so a slow machine never trips it. */
#ifndef STRESS_DEADLINE_S
#define STRESS_DEADLINE_S (SANITIZED ? 240.0 : 90.0)
#endif
#ifndef SYNC_TIMEOUT_S
#define SYNC_TIMEOUT_S (SANITIZED ? 60.0 : 15.0)
#endif

struct stress {
    struct sn_mesh *mesh;
    unsigned n;
    uint32_t cap;
    uint64_t per_pair;
    double deadline;
    atomic_int timed_out;
    atomic_int stranded;
    atomic_int send_errors;
    struct check chk;
};

struct stress_worker {
    struct stress *s;
    unsigned me;
    pthread_t tid;
};

/* Sends a burst round-robin over the peers; returns how many went out. */
static unsigned send_burst(struct stress *s, unsigned me, unsigned burst, uint64_t *next_seq,
                           unsigned *rr, uint64_t *sent, uint64_t want)
{
    unsigned done = 0;
    while (done < burst && *sent < want) {
        unsigned to;
        do
            to = *rr = (*rr + 1) % s->n;
        while (to == me);
        struct sn_msg msg = check_msg(&s->chk, me, to, next_seq[to]);
        int rc = sn_mesh_send(s->mesh, me, to, &msg);
        if (rc == -ENOBUFS)
            break; /* the overflow limit: flush and drain, then try again */
        if (rc != 0) {
            atomic_fetch_add(&s->send_errors, 1);
            break;
        }
        next_seq[to]++;
        (*sent)++;
        done++;
    }
    return done;
}

/*
 * Stops sending until every message this core sent has been handled, still flushing and
 * draining. A message published without a doorbell (a lost race) is found by nobody, and
 * sync makes every flush a possible last one, so such a message shows here as a timeout.
 */
static bool sync_sent(struct stress *s, unsigned me, const uint64_t *next_seq)
{
    double limit = now_s() + SYNC_TIMEOUT_S;
    for (unsigned iter = 1;; iter++) {
        unsigned progress = sn_mesh_flush(s->mesh, me, NULL, NULL);
        progress += sn_mesh_drain(s->mesh, me, 0);
        unsigned to = 0;
        while (to < s->n &&
               (to == me || atomic_load_explicit(&s->chk.rx[to].next[me], memory_order_relaxed) ==
                                next_seq[to]))
            to++;
        if (to == s->n)
            return true;
        if ((iter & 127) == 0 && now_s() > limit) {
            atomic_store(&s->stranded, 1);
            return false;
        }
        if (!progress)
            sched_yield();
    }
}

static void *stress_main(void *p)
{
    struct stress_worker *w = p;
    struct stress *s = w->s;
    unsigned me = w->me, rr = me;
    uint64_t next_seq[MAXN] = {0}, sent = 0, want = (s->n - 1) * s->per_pair;
    uint32_t seed = 0x9e3779b9u * (me + 1);
    /* The first burst gives every peer cap+1 messages before any flush: overflow is certain. */
    unsigned burst = (s->cap + 1) * (s->n - 1);

    for (unsigned iter = 1;; iter++) {
        if ((iter & 127) == 0 && now_s() > s->deadline) {
            atomic_store(&s->timed_out, 1);
            break;
        }
        unsigned progress = send_burst(s, me, burst, next_seq, &rr, &sent, want);
        uint32_t r = rng_next(&seed);
        burst = (r & 3) == 0 ? 1 + r % (2 * (s->cap + 1) * (s->n - 1)) : 1 + (r >> 8) % 8;
        progress += sn_mesh_flush(s->mesh, me, NULL, NULL);
        progress += sn_mesh_drain(s->mesh, me, (r & 16) ? 0 : 1 + (r >> 16) % 16);
        if (sent == want && s->chk.rx[me].got == want && !sn_mesh_backlog(s->mesh, me))
            break;
        if ((r >> 24) % 16 == 0 && !sync_sent(s, me, next_seq))
            break;
        if (!progress)
            sched_yield(); /* more threads than CPUs: let the others run */
    }
    return NULL;
}

static void run_all_to_all(unsigned n, uint32_t cap, uint64_t per_pair, unsigned linger)
{
    struct stress *s = calloc(1, sizeof *s);
    struct stress_worker w[MAXN];

    cr_assert_not_null(s);
    s->mesh = make_mesh(n, cap, 0);
    if (linger)
        sn__mesh_set_linger(s->mesh, linger);
    s->n = s->chk.n = n;
    s->cap = cap;
    s->per_pair = per_pair;
    s->deadline = now_s() + STRESS_DEADLINE_S;
    for (unsigned i = 0; i < n; i++) {
        w[i] = (struct stress_worker){.s = s, .me = i};
        cr_assert_eq(pthread_create(&w[i].tid, NULL, stress_main, &w[i]), 0);
    }
    for (unsigned i = 0; i < n; i++)
        pthread_join(w[i].tid, NULL);

    int timed_out = atomic_load(&s->timed_out), stranded = atomic_load(&s->stranded);
    uint64_t sent = 0, received = 0, overflowed = 0, left = 0;
    for (unsigned c = 0; c < n; c++) {
        struct sn_mesh_stats st = stats_of(s->mesh, c);
        sent += st.sent;
        received += st.received;
        overflowed += st.overflowed;
        left += st.overflow_now;
    }
    struct check *chk = &s->chk;
    uint64_t errors = 0, bad_count = 0;
    for (unsigned to = 0; to < n; to++) {
        errors += chk->rx[to].errors;
        for (unsigned from = 0; from < n; from++)
            bad_count += from != to && chk->rx[to].next[from] != per_pair;
    }
    int send_errors = atomic_load(&s->send_errors);
    sn_mesh_destroy(s->mesh);
    free(s);

    cr_assert_not(stranded, "n=%u cap=%u: sent messages not handled within %.0f s", n, cap,
                  SYNC_TIMEOUT_S);
    cr_assert_not(timed_out, "n=%u cap=%u: no completion within %.0f s (deadlock?)", n, cap,
                  STRESS_DEADLINE_S);
    cr_assert_eq(send_errors, 0, "n=%u cap=%u", n, cap);
    cr_assert_eq(errors, 0, "n=%u cap=%u: lost, duplicated or reordered messages", n, cap);
    cr_assert_eq(bad_count, 0, "n=%u cap=%u: a pair did not deliver all its messages", n, cap);
    cr_assert_eq(sent, (uint64_t)n * (n - 1) * per_pair);
    cr_assert_eq(received, sent);
    cr_assert_gt(overflowed, 0, "n=%u cap=%u: the overflow path was not exercised", n, cap);
    cr_assert_eq(left, 0);
}

#define STRESS_PER_PAIR (SANITIZED ? 1000 : 10000)

/*
 * Each size runs twice: with the default linger, and with doorbell bits cleared at the first
 * empty drain, so the receiver's clear-then-look-again path (and its race with a sender that
 * saw the bit still set) runs all the time instead of once per quiet spell.
 */
static void all_to_all(uint32_t cap)
{
    for (unsigned n = 2; n <= MAXN; n++) {
        run_all_to_all(n, cap, STRESS_PER_PAIR, 0);
        run_all_to_all(n, cap, STRESS_PER_PAIR, 1);
    }
}

Test(mesh_stress, all_to_all_capacity_1, .timeout = 600)
{
    all_to_all(1);
}
Test(mesh_stress, all_to_all_capacity_2, .timeout = 600)
{
    all_to_all(2);
}
Test(mesh_stress, all_to_all_capacity_64, .timeout = 600)
{
    all_to_all(64);
}

/* ---------------------------------------------------------------- stress: sleep and wake */

#define MAX_TOKENS MAXN

/*
 * Tokens hop from core to core; a core with nothing to do announces sleep, re-checks, and
 * blocks on its eventfd until a flush's wake callback writes it. Two watchdogs catch a lost
 * wake-up: a token whose hop counter stops moving, and (more sensitive, since other tokens
 * would soon rescue a stranded one) a core that stays blocked in the same sleep while
 * messages wait for it and its eventfd has not been written.
 */
struct sleepers {
    struct sn_mesh *mesh;
    unsigned n;
    unsigned ntokens;
    int efd[MAXN];
    uint64_t sleep_target;
    atomic_int stop;
    atomic_int send_errors;
    _Atomic uint64_t sleeps;
    _Atomic uint64_t hops[MAX_TOKENS];
    _Atomic unsigned parked; /* tokens that arrived after stop */
};

struct sleeper {
    struct sleepers *s;
    unsigned me;
    pthread_t tid;
    atomic_int blocked;      /* inside eventfd_read */
    _Atomic uint64_t blocks; /* sleeps begun, tells one sleep from the next */
};

static void stop_all(struct sleepers *s)
{
    atomic_store(&s->stop, 1);
    for (unsigned i = 0; i < s->n; i++)
        eventfd_write(s->efd[i], 1);
}

static void token_fn(const struct sn_msg *msg, unsigned from);

/* The sleeper that the calling thread acts as (set by each thread, and by the collector). */
static _Thread_local const struct sleeper *current_sleeper;

static void forward_token(struct sleepers *s, const struct sleeper *self, uint64_t token)
{
    unsigned id = (unsigned)(token & 0xff);
    uint64_t hop = atomic_fetch_add(&s->hops[id], 1) + 1;
    unsigned to = (self->me + 1 + (unsigned)((hop * 2654435761u) >> 7) % (s->n - 1)) % s->n;
    struct sn_msg msg = {.fn = token_fn, .arg = s, .value = token};
    if (sn_mesh_send(s->mesh, self->me, to, &msg) != 0)
        atomic_fetch_add(&s->send_errors, 1);
}

/* Runs on the receiving core: counts the hop and sends the token on. */
static void token_fn(const struct sn_msg *msg, unsigned from)
{
    struct sleepers *s = msg->arg;
    (void)from;
    if (atomic_load(&s->stop)) {
        atomic_fetch_add(&s->parked, 1);
        return;
    }
    forward_token(s, current_sleeper, msg->value);
}

static void wake_eventfd(void *ctx, unsigned to)
{
    struct sleepers *s = ctx;
    eventfd_write(s->efd[to], 1);
}

/* A short random pause before going to sleep, so senders often race the announcement. */
static void jitter(uint32_t *seed)
{
    uint32_t spins = rng_next(seed) % 256;
    for (volatile uint32_t i = 0; i < spins; i++)
        ;
}

static void *sleeper_main(void *p)
{
    struct sleeper *self = p;
    struct sleepers *s = self->s;
    unsigned me = self->me;
    uint32_t seed = 0x85ebca6bu * (me + 1);
    eventfd_t v;

    current_sleeper = self;
    while (!atomic_load(&s->stop)) {
        unsigned did = sn_mesh_drain(s->mesh, me, 0);
        did += sn_mesh_flush(s->mesh, me, wake_eventfd, s);
        if (did)
            continue;
        if (sn_mesh_backlog(s->mesh, me)) {
            sched_yield();
            continue;
        }
        jitter(&seed);
        sn_mesh_sleep_announce(s->mesh, me);
        if (sn_mesh_pending(s->mesh, me) || atomic_load(&s->stop)) {
            sn_mesh_sleep_cancel(s->mesh, me);
            continue;
        }
        atomic_fetch_add(&self->blocks, 1);
        atomic_store(&self->blocked, 1);
        eventfd_read(s->efd[me], &v); /* until a wake callback (or stop) writes it */
        atomic_store(&self->blocked, 0);
        sn_mesh_sleep_cancel(s->mesh, me);
        if (atomic_fetch_add(&s->sleeps, 1) + 1 == s->sleep_target)
            stop_all(s);
    }
    return NULL;
}

/* Stall detection only: generous, so a slow machine never trips it. */
#ifndef STALL_S
#define STALL_S (SANITIZED ? 60.0 : 20.0)
#endif

struct watch {
    uint64_t hops[MAX_TOKENS];
    double moved[MAX_TOKENS];
    uint64_t suspect_block[MAXN]; /* blocks value when the core was first seen stranded */
    double suspect_since[MAXN];
};

static bool readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 1;
}

/*
 * A core blocked in one sleep while messages wait for it (one of its rings holds published
 * messages) and nothing was written to its eventfd: a lost wake-up. A doorbell bit alone is
 * no evidence: a receiver keeps the bits of rings that were busy a moment ago set for a while
 * (SN__MESH_LINGER), also while it sleeps.
 */
static bool stranded(struct sleepers *s, struct sleeper *th, unsigned c)
{
    bool work = false;
    for (unsigned from = 0; from < s->n && !work; from++)
        work = from != c && !sn_ring_empty(s->mesh->cores[c].in[from]);
    return work && atomic_load(&th[c].blocked) && !readable(s->efd[c]);
}

/* Returns a message describing the failure, or NULL. Main thread, every 20 ms. */
static const char *watch_once(struct sleepers *s, struct sleeper *th, struct watch *w, double t)
{
    for (unsigned k = 0; k < s->ntokens; k++) {
        uint64_t h = atomic_load(&s->hops[k]);
        if (h != w->hops[k]) {
            w->hops[k] = h;
            w->moved[k] = t;
        } else if (t - w->moved[k] > STALL_S) {
            return "a token stopped moving";
        }
    }
    for (unsigned c = 0; c < s->n; c++) {
        uint64_t b = atomic_load(&th[c].blocks);
        if (!stranded(s, th, c) || b != atomic_load(&th[c].blocks)) {
            w->suspect_block[c] = 0;
        } else if (w->suspect_block[c] != b) {
            w->suspect_block[c] = b;
            w->suspect_since[c] = t;
        } else if (t - w->suspect_since[c] > STALL_S / 10) {
            return "a core slept through incoming messages";
        }
    }
    return NULL;
}

static void run_sleepers(unsigned n, unsigned ntokens, uint64_t sleep_target)
{
    struct sleepers *s = calloc(1, sizeof *s);
    struct sleeper *th = calloc(n, sizeof *th);
    struct watch w = {0};
    const char *failure = NULL;

    cr_assert(s && th);
    s->mesh = make_mesh(n, 2, 0);
    s->n = n;
    s->ntokens = ntokens;
    s->sleep_target = sleep_target;
    for (unsigned i = 0; i < n; i++) {
        s->efd[i] = eventfd(0, EFD_CLOEXEC);
        cr_assert_geq(s->efd[i], 0);
        th[i].s = s;
        th[i].me = i;
    }
    /* Tokens start staged on cores 0..ntokens-1; each core's first flush sends them on. */
    for (unsigned t = 0; t < ntokens; t++) {
        w.moved[t] = now_s();
        forward_token(s, &th[t % n], t);
        w.hops[t] = 1;
    }
    for (unsigned i = 0; i < n; i++)
        cr_assert_eq(pthread_create(&th[i].tid, NULL, sleeper_main, &th[i]), 0);

    while (!atomic_load(&s->stop)) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        failure = watch_once(s, th, &w, now_s());
        if (failure)
            stop_all(s);
    }
    for (unsigned i = 0; i < n; i++)
        pthread_join(th[i].tid, NULL);

    /* Every core quiet: this thread may act as each of them to collect the tokens in flight. */
    for (unsigned moved_any = 1; moved_any;) {
        moved_any = 0;
        for (unsigned c = 0; c < n; c++) {
            current_sleeper = &th[c];
            moved_any += sn_mesh_flush(s->mesh, c, NULL, NULL);
            moved_any += sn_mesh_drain(s->mesh, c, 0);
        }
    }
    current_sleeper = NULL;
    uint64_t wakes = 0, sleeps = atomic_load(&s->sleeps);
    for (unsigned c = 0; c < n; c++)
        wakes += stats_of(s->mesh, c).wakes;
    unsigned parked = atomic_load(&s->parked);
    int send_errors = atomic_load(&s->send_errors);
    for (unsigned i = 0; i < n; i++)
        close(s->efd[i]);
    sn_mesh_destroy(s->mesh);
    free(th);
    free(s);

    cr_assert_null(failure, "n=%u tokens=%u: %s: lost wake-up", n, ntokens, failure ? failure : "");
    cr_assert_eq(send_errors, 0);
    cr_assert_eq(parked, ntokens, "n=%u: every token accounted for", n);
    cr_assert_geq(sleeps, sleep_target);
    cr_assert_gt(wakes, 0);
    cr_log_info("sleepers n=%u tokens=%u: %llu sleeps, %llu wakes", n, ntokens,
                (unsigned long long)sleeps, (unsigned long long)wakes);
}

/* 10^5 sleep cycles in all (10^4 under sanitizers). */
#define SLEEPS (SANITIZED ? 10000u : 100000u)

Test(mesh_stress, sleep_wake_no_lost_wakeup, .timeout = 600)
{
    run_sleepers(2, 1, SLEEPS * 3 / 10);
    run_sleepers(2, 2, SLEEPS * 2 / 10);
    run_sleepers(4, 3, SLEEPS * 2 / 10);
    run_sleepers(8, 4, SLEEPS * 3 / 10);
}

/* ---------------------------------------------------------------- stress: more than 64 cores */

/*
 * A mesh of 200 cores (four doorbell words and a summary word): threads act as senders and
 * one as the receiver, core 0. Each sender waits until its message was handled before it
 * sends the next, so every flush may be the last one, and with linger 1 the receiver clears
 * the sender's bit after every empty drain, and the word's summary mark with it when the
 * word empties: the receiver's clear-then-look-again (core/mesh.c, case 5) races the
 * sender's mark once per message. A lost mark strands a message, which shows as a sender
 * waiting past the deadline. Runs: two senders in one word with the threads spinning; five
 * senders over three words; the same with a receiver that blocks on an eventfd whenever it
 * finds nothing. (The race window is a few instructions wide and these runs seldom hit it;
 * tests/test_mesh.c makes it happen deterministically.)
 */
#define WIDE_N      200u
#define WIDE_MAX_TX 5

struct wide {
    struct sn_mesh *mesh;
    bool sleep;
    uint64_t per_sender;
    int efd;
    atomic_int stop;
    atomic_int stranded;
    atomic_int errors;
    _Atomic uint64_t next[WIDE_N]; /* next sequence number the receiver expects per sender */
};

struct wide_sender {
    struct wide *w;
    unsigned me;
    pthread_t tid;
};

static void wide_check(const struct sn_msg *msg, unsigned from)
{
    struct wide *w = msg->arg;
    uint64_t next = atomic_load_explicit(&w->next[from], memory_order_relaxed);
    if (msg->value != next)
        atomic_fetch_add(&w->errors, 1);
    atomic_store_explicit(&w->next[from], next + 1, memory_order_release);
}

static void wide_wake(void *ctx, unsigned to)
{
    struct wide *w = ctx;
    (void)to;
    eventfd_write(w->efd, 1);
}

static void wide_stop(struct wide *w)
{
    atomic_store(&w->stop, 1);
    eventfd_write(w->efd, 1);
}

/* Spins a little before yielding: two threads on two CPUs then meet in the race window. */
static void wide_pause(unsigned *spins)
{
    if (++*spins % 64 == 0)
        sched_yield();
}

static void *wide_sender_main(void *p)
{
    struct wide_sender *s = p;
    struct wide *w = s->w;
    for (uint64_t seq = 0; seq < w->per_sender && !atomic_load(&w->stop); seq++) {
        struct sn_msg msg = {.fn = wide_check, .arg = w, .value = seq};
        if (sn_mesh_send(w->mesh, s->me, 0, &msg) != 0)
            atomic_fetch_add(&w->errors, 1);
        sn_mesh_flush(w->mesh, s->me, wide_wake, w);
        double limit = now_s() + SYNC_TIMEOUT_S;
        unsigned spins = 0;
        while (atomic_load_explicit(&w->next[s->me], memory_order_acquire) <= seq) {
            if (atomic_load(&w->stop))
                return NULL;
            if ((spins & 1023) == 0 && now_s() > limit) {
                atomic_store(&w->stranded, 1);
                wide_stop(w);
                return NULL;
            }
            wide_pause(&spins);
        }
    }
    return NULL;
}

static void *wide_receiver_main(void *p)
{
    struct wide *w = p;
    unsigned spins = 0;
    eventfd_t v;
    while (!atomic_load(&w->stop)) {
        if (sn_mesh_drain(w->mesh, 0, 0))
            continue;
        if (!w->sleep) {
            wide_pause(&spins);
            continue;
        }
        sn_mesh_sleep_announce(w->mesh, 0);
        if (!sn_mesh_pending(w->mesh, 0) && !atomic_load(&w->stop))
            eventfd_read(w->efd, &v);
        sn_mesh_sleep_cancel(w->mesh, 0);
    }
    return NULL;
}

static void run_wide(const unsigned *from, unsigned nsenders, uint64_t per_sender, bool sleep)
{
    struct wide *w = calloc(1, sizeof *w);
    struct wide_sender s[WIDE_MAX_TX];
    pthread_t rx;

    cr_assert_not_null(w);
    cr_assert_leq(nsenders, WIDE_MAX_TX);
    w->mesh = make_mesh(WIDE_N, 4, 0);
    sn__mesh_set_linger(w->mesh, 1);
    w->sleep = sleep;
    w->per_sender = per_sender;
    w->efd = eventfd(0, EFD_CLOEXEC);
    cr_assert_geq(w->efd, 0);
    cr_assert_eq(pthread_create(&rx, NULL, wide_receiver_main, w), 0);
    for (unsigned i = 0; i < nsenders; i++) {
        s[i] = (struct wide_sender){.w = w, .me = from[i]};
        cr_assert_eq(pthread_create(&s[i].tid, NULL, wide_sender_main, &s[i]), 0);
    }
    for (unsigned i = 0; i < nsenders; i++)
        pthread_join(s[i].tid, NULL);
    wide_stop(w);
    pthread_join(rx, NULL);

    int stranded = atomic_load(&w->stranded), errors = atomic_load(&w->errors);
    uint64_t got[WIDE_MAX_TX], summary = atomic_load(&w->mesh->inboxes[0]->summary);
    for (unsigned i = 0; i < nsenders; i++)
        got[i] = atomic_load(&w->next[from[i]]);
    close(w->efd);
    sn_mesh_destroy(w->mesh);
    free(w);

    cr_assert_not(stranded, "sleep=%d: a message was not handled within %.0f s (lost mark?)", sleep,
                  SYNC_TIMEOUT_S);
    cr_assert_eq(errors, 0, "sleep=%d: lost, duplicated or reordered messages", sleep);
    for (unsigned i = 0; i < nsenders; i++)
        cr_assert_eq(got[i], per_sender, "sleep=%d: sender %u", sleep, from[i]);
    cr_assert_leq(summary, 0xfu, "only the four words' bits");
}

#define WIDE_PER (SANITIZED ? 10000u : 100000u)

Test(mesh_stress, wide_mesh_summary_one_word, .timeout = 600)
{
    static const unsigned from[] = {130, 131};
    run_wide(from, 2, WIDE_PER, false);
}

Test(mesh_stress, wide_mesh_summary_many_senders, .timeout = 600)
{
    static const unsigned from[] = {1, 2, 64, 130, 199};
    run_wide(from, 5, WIDE_PER / 50, false);
    run_wide(from, 5, WIDE_PER / 50, true);
}
