/*
 * Scheduling groups (include/sn/sched.h): the process-wide registry of groups and each
 * core's run queues, one per group, picked by virtual run time scaled by shares.
 *
 * A group is a small global object (name, shares, a slot id below SN_SCHED_GROUPS_MAX); each
 * core keeps its own queue and accounts for every group in sched.gq[id], touched by that core
 * only (the counters are read by other threads, relaxed). The group of the running code is
 * the low bits of the core's run tag (core/sched.h), which everything it leaves to run later
 * inherits, and which a cross-core request carries to its target (reactor/smp.c).
 *
 * Picking: among the groups with queued tasks (a bit mask, so an idle group costs nothing),
 * run the one with the smallest virtual run time, and charge it the time its tasks took
 * times SN__SCHED_VSCALE / shares: over a busy period each group gets CPU in proportion to
 * its shares. A group that becomes runnable starts no lower than the virtual time of the last
 * group picked, so sleeping earns no credit to starve the others with later. With one group
 * runnable, tasks run in batches of SN__SCHED_CLOCK_EVERY between clock reads, as before
 * groups existed, charged wall time; with several, a group runs task by task for at most a
 * slice (SN__SCHED_SLICE_NS, clock read after each task) and is charged the thread's CPU
 * time for it (one CLOCK_THREAD_CPUTIME_ID read per slice), so on a shared machine the time
 * the thread was preempted does not count against whichever group happened to run.
 */
#include "core/sched.h"

#include <sn/metrics.h>

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sn_sched_group {
    char name[SN_SCHED_GROUP_NAME_MAX];
    _Atomic unsigned shares;
    unsigned id;     /* slot in the registry and in each core's gq[] */
    uint32_t serial; /* tells a core's gq[id] left by an older group of the same slot */
};

static struct sn_sched_group main_group = {
    .name = "main", .shares = SN_SCHED_DEFAULT_SHARES, .id = 0, .serial = 0};
static struct sn_sched_group *_Atomic registry[SN_SCHED_GROUPS_MAX] = {&main_group};
static _Atomic uint32_t next_serial = 1;

struct sn_sched_group *sn_sched_group_main(void)
{
    return &main_group;
}

int sn_sched_group_create(const struct sn_sched_group_config *cfg, struct sn_sched_group **out)
{
    if (!cfg || !out || cfg->shares == 0 || cfg->shares > SN_SCHED_MAX_SHARES)
        return -EINVAL;
    struct sn_sched_group *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    strncpy(g->name, cfg->name ? cfg->name : "group", sizeof g->name - 1);
    atomic_init(&g->shares, cfg->shares);
    g->serial = atomic_fetch_add(&next_serial, 1);
    for (unsigned i = 1; i < SN_SCHED_GROUPS_MAX; i++) {
        struct sn_sched_group *expected = NULL;
        if (atomic_compare_exchange_strong(&registry[i], &expected, g)) {
            g->id = i;
            *out = g;
            return 0;
        }
    }
    free(g);
    return -ENOSPC;
}

void sn_sched_group_destroy(struct sn_sched_group *g)
{
    if (!g || g == &main_group)
        return;
    atomic_store(&registry[g->id], NULL);
    free(g);
}

int sn_sched_group_set_shares(struct sn_sched_group *g, unsigned shares)
{
    if (!g || shares == 0 || shares > SN_SCHED_MAX_SHARES)
        return -EINVAL;
    atomic_store_explicit(&g->shares, shares, memory_order_relaxed);
    return 0;
}

unsigned sn_sched_group_shares(const struct sn_sched_group *g)
{
    return atomic_load_explicit(&((struct sn_sched_group *)g)->shares, memory_order_relaxed);
}

const char *sn_sched_group_name(const struct sn_sched_group *g)
{
    return g->name;
}

struct sn_sched_group *sn_sched_group_current(void)
{
    struct sn__sched *s = sn__sched_here(__func__);
    struct sn__gq *q = &s->gq[s->tag & SN__TAG_GROUP];
    return q->group ? (struct sn_sched_group *)q->group : &main_group;
}

uint8_t sn__sched_group_enter(struct sn__sched *s, const struct sn_sched_group *g)
{
    struct sn__gq *q = &s->gq[g->id];
    if (sn_unlikely(q->serial != g->serial || !q->group)) {
        /* First use of this slot by this group on this core: fresh accounts. */
        assert(q->len == 0 && "a group destroyed while its tasks were queued");
        q->vruntime = s->vmin;
        q->serial = g->serial;
        q->group = g;
        atomic_store_explicit(&q->run_ns, 0, memory_order_relaxed);
        atomic_store_explicit(&q->tasks, 0, memory_order_relaxed);
        atomic_store_explicit(&q->wait_max_ns, 0, memory_order_relaxed);
    }
    return (uint8_t)g->id;
}

uint8_t sn__sched_group_by_id(struct sn__sched *s, unsigned id)
{
    struct sn_sched_group *g = atomic_load_explicit(&registry[id], memory_order_acquire);
    return g ? sn__sched_group_enter(s, g) : 0; /* destroyed meanwhile: the main group */
}

void sn__sched_activate(struct sn__sched *s, unsigned id)
{
    struct sn__gq *q = &s->gq[id];
    uint32_t bit = (uint32_t)1 << id;
    q->since = s->clock;
    atomic_store_explicit(&q->queue_len, 1, memory_order_relaxed);
    if (!(s->active & bit)) {
        s->active |= bit;
        if (q->vruntime < s->vmin)
            q->vruntime = s->vmin; /* no credit for the time it had nothing to run */
    }
}

/* The runnable group with the smallest virtual run time. */
static unsigned pick(const struct sn__sched *s)
{
    uint32_t bits = s->active;
    unsigned best = (unsigned)__builtin_ctz(bits);
    for (bits &= bits - 1; bits; bits &= bits - 1) {
        unsigned id = (unsigned)__builtin_ctz(bits);
        if (s->gq[id].vruntime < s->gq[best].vruntime)
            best = id;
    }
    return best;
}

static void charge(struct sn__gq *q, uint64_t ns, unsigned tasks)
{
    unsigned shares = q->group ? sn_sched_group_shares(q->group) : SN_SCHED_DEFAULT_SHARES;
    q->vruntime += ns * SN__SCHED_VSCALE / shares;
    sn__sched_count(&q->run_ns, ns);
    sn__sched_count(&q->tasks, tasks);
}

void sn__sched_charge(struct sn__sched *s, unsigned id, uint64_t ns)
{
    struct sn__gq *q = &s->gq[id];
    /* The tag came from code of this group on this core, so it has accounts; a group
     * destroyed against its contract (io of its code still in flight) is not charged. */
    if (q->group && atomic_load_explicit(&registry[id], memory_order_acquire) == q->group)
        charge(q, ns, 0);
}

static struct sn_task *pop(struct sn__gq *q)
{
    struct sn_task *t = q->head;
    q->head = t->next;
    if (!q->head)
        q->tail = &q->head;
    q->len--;
    return t;
}

/* The calling thread's CPU time: what groups competing for the core are charged. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Runs group q alone (no other group runnable): batches between clock reads, wall time. */
static unsigned run_alone(struct sn__sched *s, struct sn__gq *q, uint32_t bit, uint64_t t0,
                          uint64_t *now)
{
    unsigned k = 0;
    do {
        struct sn_task *t = pop(q);
        t->fn(t);
        k++;
    } while (q->head && k < SN__SCHED_CLOCK_EVERY && !(s->active & ~bit));
    *now = sn_now_ns();
    charge(q, *now - t0, k);
    return k;
}

/*
 * Runs group q while others wait: task by task for a slice, charged the thread's CPU time,
 * so time the thread spent preempted (a shared machine) is charged to nobody.
 */
static unsigned run_shared(struct sn__gq *q, uint64_t t0, uint64_t start, uint64_t quota_ns,
                           uint64_t *now)
{
    uint64_t cpu0 = thread_cpu_ns();
    unsigned k = 0;
    do {
        struct sn_task *t = pop(q);
        t->fn(t);
        k++;
        *now = sn_now_ns();
    } while (q->head && *now - t0 < SN__SCHED_SLICE_NS && (!quota_ns || *now - start < quota_ns));
    charge(q, thread_cpu_ns() - cpu0, k);
    return k;
}

unsigned sn__sched_run(struct sn__sched *s, uint64_t quota_ns)
{
    uint64_t start = sn__sched_now(s), t0 = start, now;
    unsigned n = 0;
    uint8_t tag = s->tag;

    s->clock = start;
    while (s->active) {
        unsigned id = pick(s);
        struct sn__gq *q = &s->gq[id];
        uint32_t bit = (uint32_t)1 << id;
        uint64_t waited = t0 - q->since;
        if (sn_unlikely(waited > atomic_load_explicit(&q->wait_max_ns, memory_order_relaxed)))
            atomic_store_explicit(&q->wait_max_ns, waited, memory_order_relaxed);
        s->vmin = q->vruntime;
        s->tag = (uint8_t)id;
        if (sn_likely(!(s->active & ~bit)))
            n += run_alone(s, q, bit, t0, &now);
        else
            n += run_shared(q, t0, start, quota_ns, &now);
        s->clock = now;
        t0 = now;
        if (q->head)
            q->since = now;
        else
            s->active &= ~bit;
        atomic_store_explicit(&q->queue_len, q->len, memory_order_relaxed);
        if (quota_ns && now - start >= quota_ns)
            break;
    }
    s->tag = tag;
    s->tasks_run += n;
    return n;
}

void sn__sched_group_stats(const struct sn__sched *s, const struct sn_sched_group *g,
                           struct sn_sched_group_metrics *out)
{
    const struct sn__gq *q = &s->gq[g->id];
    memset(out, 0, sizeof *out);
    if (q->serial != g->serial || q->group != g)
        return;
    out->run_ns = atomic_load_explicit(&q->run_ns, memory_order_relaxed);
    out->tasks = atomic_load_explicit(&q->tasks, memory_order_relaxed);
    out->queue_len = atomic_load_explicit(&q->queue_len, memory_order_relaxed);
    out->wait_max_ns = atomic_load_explicit(&q->wait_max_ns, memory_order_relaxed);
}
