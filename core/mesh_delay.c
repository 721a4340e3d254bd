/*
 * Queue-delay sampling (include/sn/mesh.h, sample_every): one message in `sample_every` per
 * ordered pair is preceded by a stamp message carrying its enqueue time; the receiver records
 * the stamp's age when it handles it into a per-pair histogram. A stamp is an ordinary
 * message queued right before the sampled one, so its age is the sampled message's time in
 * the staging batch, the overflow and the ring, and the hot path pays only a countdown.
 *
 * Histogram: 4 sub-buckets per power of two of nanoseconds (256 buckets), so a percentile is
 * reported as the upper edge of its bucket, at most 25% above the true value; the maximum is
 * exact. Written by the receiving core only (relaxed single-writer stores), read by anyone.
 */
#include "core/mesh_internal.h"

#include <sn/timer.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 256

struct sn__mesh_delay {
    _Atomic uint64_t count;
    _Atomic uint64_t max_ns;
    _Atomic uint32_t bucket[BUCKETS];
};

static unsigned bucket_of(uint64_t ns)
{
    if (ns < 4)
        return (unsigned)ns;
    unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
    return msb * 4 + (unsigned)((ns >> (msb - 2)) & 3);
}

/* The largest value that falls in bucket i. */
static uint64_t bucket_top(unsigned i)
{
    if (i < 4)
        return i;
    unsigned msb = i / 4, sub = i % 4;
    uint64_t base = (uint64_t)(4 + sub) << (msb - 2);
    return base + ((uint64_t)1 << (msb - 2)) - 1;
}

static void record(struct sn__mesh_delay *h, uint64_t ns)
{
    _Atomic uint32_t *b = &h->bucket[bucket_of(ns)];
    atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    sn__mesh_count(&h->count, 1);
    if (ns > atomic_load_explicit(&h->max_ns, memory_order_relaxed))
        atomic_store_explicit(&h->max_ns, ns, memory_order_relaxed);
}

/* The stamp's handler, on the receiver: arg is the receiver's private state. */
static void stamp_fn(const struct sn_msg *msg, unsigned from)
{
    struct sn__mesh_core *core = msg->arg;
    uint64_t now = sn_now_ns();
    struct sn__mesh_delay *h = atomic_load_explicit(&core->delay[from], memory_order_relaxed);
    if (sn_unlikely(!h)) {
        h = calloc(1, sizeof *h);
        if (!h)
            return; /* a lost sample, nothing else */
        atomic_store_explicit(&core->delay[from], h, memory_order_release);
    }
    record(h, now > msg->value ? now - msg->value : 0);
}

void sn__mesh_sample(struct sn_mesh *mesh, struct sn__mesh_core *core, unsigned from, unsigned to)
{
    core->sample_left[to] = mesh->sample_every + 1; /* the stamp's own send takes one off */
    struct sn_msg stamp = {.fn = stamp_fn, .arg = &mesh->cores[to], .value = sn_now_ns()};
    (void)sn_mesh_send(mesh, from, to, &stamp); /* -ENOBUFS/-ENOMEM: the sample is lost */
}

int sn__mesh_delay_init(struct sn_mesh *mesh, unsigned me)
{
    struct sn__mesh_core *core = &mesh->cores[me];
    unsigned n = mesh->ncores;
    core->sample_left = calloc(n, sizeof *core->sample_left);
    core->delay = calloc(n, sizeof *core->delay);
    if (!core->sample_left || !core->delay)
        return -ENOMEM;
    for (unsigned to = 0; to < n; to++)
        core->sample_left[to] = mesh->sample_every;
    return 0;
}

void sn__mesh_delay_free(struct sn_mesh *mesh, unsigned me)
{
    struct sn__mesh_core *core = &mesh->cores[me];
    for (unsigned from = 0; core->delay && from < mesh->ncores; from++)
        free(atomic_load_explicit(&core->delay[from], memory_order_relaxed));
    free(core->delay);
    free(core->sample_left);
    core->delay = NULL;
    core->sample_left = NULL;
}

int sn_mesh_queue_delay(const struct sn_mesh *mesh, unsigned from, unsigned to,
                        struct sn_mesh_delay *out)
{
    if (!out || from >= mesh->ncores || to >= mesh->ncores || from == to)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    const struct sn__mesh_core *core = &mesh->cores[to];
    if (!core->delay)
        return 0;
    struct sn__mesh_delay *h = atomic_load_explicit(&core->delay[from], memory_order_acquire);
    if (!h)
        return 0;
    uint32_t counts[BUCKETS];
    uint64_t total = 0;
    for (unsigned i = 0; i < BUCKETS; i++)
        total += counts[i] = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
    out->samples = total;
    out->max_ns = atomic_load_explicit(&h->max_ns, memory_order_relaxed);
    uint64_t seen = 0, p50 = (total + 1) / 2, p99 = total - total / 100;
    for (unsigned i = 0; i < BUCKETS && total; i++) {
        if (!counts[i])
            continue;
        uint64_t before = seen;
        seen += counts[i];
        uint64_t top = bucket_top(i) < out->max_ns ? bucket_top(i) : out->max_ns;
        if (before < p50 && seen >= p50)
            out->p50_ns = top;
        if (before < p99 && seen >= p99)
            out->p99_ns = top;
    }
    return 0;
}
