/* Mesh creation, destruction and counters; the message paths are in core/mesh.c. */
#include "core/alloc.h"
#include "core/mesh_internal.h"

#include <errno.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static bool is_power_of_two(uint32_t x)
{
    return x && (x & (x - 1)) == 0;
}

/* True when the send path may issue write prefetches (see prefetch_ahead in core/mesh.c). */
static bool cpu_has_prefetchw(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    return __get_cpuid(0x80000001u, &a, &b, &c, &d) && (c & bit_PRFCHW);
#else
    return true;
#endif
}

/*
 * The ring capacity when the config leaves it 0: SN_MESH_DEFAULT_RING_CAPACITY while a core's
 * N-1 incoming rings hold at most SN__MESH_INBOUND_SLOTS slots together (N <= 33), then the
 * largest power of two that keeps them within it, never below SN__MESH_MIN_DEFAULT_CAPACITY.
 * With 1024 slots at every N, the rings alone took (N-1) * 33 KiB per core: 33 MiB per core
 * and 34 GiB in all at 1024 cores. Smaller rings cost no correctness (a full ring spills
 * into the sender's overflow FIFO), and with many cores each pair carries a smaller share of
 * a core's traffic.
 */
static uint32_t default_capacity(unsigned ncores)
{
    uint32_t cap = SN_MESH_DEFAULT_RING_CAPACITY;
    while (cap > SN__MESH_MIN_DEFAULT_CAPACITY &&
           (uint64_t)cap * (ncores - 1) > SN__MESH_INBOUND_SLOTS)
        cap /= 2;
    return cap;
}

static int check_config(const struct sn_mesh_config *config)
{
    if (config->ncores == 0 || config->ncores > SN_MESH_MAX_CORES)
        return -EINVAL;
    if (config->ring_capacity &&
        (!is_power_of_two(config->ring_capacity) || config->ring_capacity > SN_RING_MAX_CAPACITY))
        return -EINVAL;
    if (config->sample_every > UINT16_MAX)
        return -EINVAL;
    for (unsigned c = 0; config->allocators && c < config->ncores; c++) {
        const struct sn_allocator *a = config->allocators[c];
        if (a && (!a->alloc || !a->free))
            return -EINVAL;
    }
    return 0;
}

/*
 * One block per core from its allocator (its NUMA node): the inbox that senders write (sleep
 * word and doorbell, each on its own lines) followed by the core's private arrays. One block
 * keeps those arrays off lines that another core's arrays would share if each were malloc'd.
 */
static size_t block_size(unsigned n, unsigned nwords, size_t inbox_size, bool sampling)
{
    size_t priv =
        nwords * sizeof(uint64_t) + n * (sizeof(struct sn__mesh_ovf) + sizeof(struct sn_ring *) +
                                         2 * sizeof(unsigned) + sizeof(uint16_t) + sizeof(uint8_t));
    /* Queue-delay sampling (core/mesh_delay.c): per source the copied stamps and the
     * histogram, per destination the ring index of the next message to stamp. */
    if (sampling)
        priv += n * (sizeof(struct sn__mesh_stamps) + sizeof(uint64_t) +
                     sizeof(struct sn__mesh_delay *));
    return (inbox_size + priv + SN_CACHELINE - 1) & ~(size_t)(SN_CACHELINE - 1);
}

static int core_init(struct sn_mesh *mesh, unsigned me)
{
    struct sn__mesh_core *core = &mesh->cores[me];
    unsigned n = mesh->ncores;
    unsigned char *block = sn__alloc(mesh->allocators[me], mesh->block_size);

    if (!block)
        return -ENOMEM;
    memset(block, 0, mesh->block_size);
    unsigned char *p = block + mesh->inbox_size;
    core->inbox = (struct sn__mesh_inbox *)block;
    /* Widest alignment first: u64, pointers and structs of them, unsigned, u16, u8. */
    core->linger = (uint64_t *)p;
    p += mesh->nwords * sizeof *core->linger;
    core->ovf = (struct sn__mesh_ovf *)p;
    p += n * sizeof *core->ovf;
    if (mesh->sample_every) {
        core->stamps = (struct sn__mesh_stamps *)p;
        p += n * sizeof *core->stamps;
        core->stamp_next = (uint64_t *)p;
        p += n * sizeof *core->stamp_next;
    }
    core->in = (struct sn_ring **)p;
    p += n * sizeof *core->in;
    if (mesh->sample_every) {
        core->delay = (struct sn__mesh_delay * _Atomic *)p;
        p += n * sizeof *core->delay;
    }
    core->dirty = (unsigned *)p;
    p += n * sizeof *core->dirty;
    core->rung = (unsigned *)p;
    p += n * sizeof *core->rung;
    core->quiet = (uint16_t *)p;
    p += n * sizeof *core->quiet;
    core->is_dirty = p;
    core->out = &mesh->rings[(size_t)me * n];
    mesh->inboxes[me] = core->inbox;
    return 0;
}

/* The ring from -> to gets its memory from the consumer's allocator (its NUMA node). */
static int rings_init(struct sn_mesh *mesh, uint32_t capacity)
{
    unsigned n = mesh->ncores;
    for (unsigned from = 0; from < n; from++) {
        for (unsigned to = 0; to < n; to++) {
            if (from == to)
                continue;
            struct sn_ring **slot = &mesh->rings[(size_t)from * n + to];
            int rc = sn_ring_create(capacity, sizeof(struct sn_msg), mesh->allocators[to], slot);
            if (rc < 0)
                return rc;
            mesh->cores[to].in[from] = *slot;
        }
    }
    return 0;
}

/*
 * Shared read-mostly memory (the mesh, its pointer arrays, the per-core structs) is cache-line
 * aligned and padded, so no line of it is shared with data some core writes often.
 */
static void *zalloc(size_t size)
{
    void *p = sn__alloc(NULL, size);
    if (p)
        memset(p, 0, size);
    return p;
}

static int mesh_alloc(const struct sn_mesh_config *config, struct sn_mesh *mesh)
{
    unsigned n = config->ncores;

    mesh->ncores = n;
    mesh->nwords = (n + 63) / 64;
    mesh->overflow_limit =
        config->overflow_limit ? config->overflow_limit : SN_MESH_DEFAULT_OVERFLOW_LIMIT;
    mesh->sample_every = config->sample_every;
    mesh->inbox_size = (offsetof(struct sn__mesh_inbox, bell) + mesh->nwords * sizeof(uint64_t) +
                        SN_CACHELINE - 1) &
                       ~(size_t)(SN_CACHELINE - 1);
    mesh->block_size = block_size(n, mesh->nwords, mesh->inbox_size, mesh->sample_every != 0);
    mesh->rings = zalloc((size_t)n * n * sizeof *mesh->rings);
    mesh->inboxes = zalloc(n * sizeof *mesh->inboxes);
    mesh->allocators = zalloc(n * sizeof *mesh->allocators);
    mesh->cores = zalloc(n * sizeof *mesh->cores);
    if (!mesh->rings || !mesh->inboxes || !mesh->allocators || !mesh->cores)
        return -ENOMEM;
    for (unsigned c = 0; config->allocators && c < n; c++)
        mesh->allocators[c] = config->allocators[c];
    return 0;
}

int sn_mesh_create(const struct sn_mesh_config *config, struct sn_mesh **out)
{
    if (!config || !out)
        return -EINVAL;
    int rc = check_config(config);
    if (rc < 0)
        return rc;
    struct sn_mesh *mesh = zalloc(sizeof *mesh);
    if (!mesh)
        return -ENOMEM;
    rc = mesh_alloc(config, mesh);
    for (unsigned c = 0; rc == 0 && c < mesh->ncores; c++) {
        rc = core_init(mesh, c);
        if (rc == 0 && mesh->sample_every)
            sn__mesh_delay_init(mesh, c);
    }
    if (rc == 0) {
        uint32_t capacity =
            config->ring_capacity ? config->ring_capacity : default_capacity(mesh->ncores);
        /* Half a ring at most, so the receiver can free slots while the sender fills more. */
        mesh->batch = capacity < 4
                          ? UINT32_MAX
                          : (capacity / 2 < SN__MESH_BATCH ? capacity / 2 : SN__MESH_BATCH);
        mesh->prefetchw = cpu_has_prefetchw();
        mesh->linger = SN__MESH_LINGER;
        rc = rings_init(mesh, capacity);
    }
    if (rc < 0) {
        sn_mesh_destroy(mesh);
        return rc;
    }
    *out = mesh;
    return 0;
}

static void core_free(struct sn_mesh *mesh, unsigned me)
{
    struct sn__mesh_core *core = &mesh->cores[me];
    if (!core->inbox)
        return;
    for (unsigned to = 0; to < mesh->ncores; to++)
        sn__mesh_ovf_free(&core->ovf[to]);
    sn__mesh_delay_free(mesh, me);
    sn__free(mesh->allocators[me], core->inbox, mesh->block_size);
}

/* Also frees a half-built mesh from a failed sn_mesh_create (NULL pointers are skipped). */
void sn_mesh_destroy(struct sn_mesh *mesh)
{
    if (!mesh)
        return;
    unsigned n = mesh->ncores;
    for (size_t i = 0; mesh->rings && i < (size_t)n * n; i++)
        sn_ring_destroy(mesh->rings[i]);
    for (unsigned c = 0; mesh->cores && c < n; c++)
        core_free(mesh, c);
    sn__free(NULL, mesh->cores, n * sizeof *mesh->cores);
    sn__free(NULL, mesh->rings, (size_t)n * n * sizeof *mesh->rings);
    sn__free(NULL, mesh->inboxes, n * sizeof *mesh->inboxes);
    sn__free(NULL, mesh->allocators, n * sizeof *mesh->allocators);
    sn__free(NULL, mesh, sizeof *mesh);
}

void sn__mesh_set_linger(struct sn_mesh *mesh, unsigned drains)
{
    mesh->linger = drains < 1 ? 1 : drains > SN__MESH_LINGER ? SN__MESH_LINGER : drains;
}

unsigned sn_mesh_cores(const struct sn_mesh *mesh)
{
    return mesh->ncores;
}

void sn_mesh_stats(const struct sn_mesh *mesh, unsigned core, struct sn_mesh_stats *out)
{
    memset(out, 0, sizeof *out);
    if (core >= mesh->ncores)
        return;
    const struct sn__mesh_counters *c = &mesh->cores[core].stats;
    out->sent = sn__mesh_counter(&c->sent);
    out->received = sn__mesh_counter(&c->received);
    out->overflowed = sn__mesh_counter(&c->overflowed);
    out->overflow_now = sn__mesh_counter(&c->overflow_now);
    out->overflow_peak = sn__mesh_counter(&c->overflow_peak);
    out->overflow_bytes = sn__mesh_counter(&c->overflow_bytes);
    out->overflow_rejected = sn__mesh_counter(&c->overflow_rejected);
    out->wakes = sn__mesh_counter(&c->wakes);
}
