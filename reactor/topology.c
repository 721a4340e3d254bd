/*
 * Machine discovery with hwloc, choice of reactor CPUs, pinning and per-node allocators:
 * see reactor/topology.h.
 */
#include "reactor/topology.h"

#include <errno.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>

struct node_alloc {
    struct sn_allocator a; /* first: the pointer handed out */
    struct sn__topology *t;
    hwloc_nodeset_t nodeset;
    bool bind;
};

struct sn__topology {
    hwloc_topology_t topo;
    hwloc_cpuset_t usable; /* PUs the machine (cgroup) lets us run on */
    unsigned ncores, ncpus, nnodes;
    int *core_cpu; /* ncores entries: first usable PU of each core, logical order */
    struct node_alloc *nodes;
};

static void *alloc_bound(void *ctx, size_t size)
{
    struct node_alloc *n = ctx;
    /* Not STRICT: where binding fails hwloc falls back to its plain allocation, which
     * hwloc_free also releases, so the two paths stay consistent. */
    return hwloc_alloc_membind(n->t->topo, size ? size : 1, n->nodeset, HWLOC_MEMBIND_BIND,
                               HWLOC_MEMBIND_BYNODESET);
}

static void free_bound(void *ctx, void *ptr, size_t size)
{
    struct node_alloc *n = ctx;
    if (ptr)
        hwloc_free(n->t->topo, ptr, size ? size : 1);
}

static void *alloc_plain(void *ctx, size_t size)
{
    (void)ctx;
    size_t rounded = (size + SN_CACHELINE - 1) & ~(size_t)(SN_CACHELINE - 1);
    return aligned_alloc(SN_CACHELINE, rounded ? rounded : SN_CACHELINE);
}

static void free_plain(void *ctx, void *ptr, size_t size)
{
    (void)ctx, (void)size;
    free(ptr);
}

/* Binding only pays off with several nodes; FORCE/NO flags override for tests. */
static bool want_membind(const struct sn__topology *t, unsigned flags)
{
    const struct hwloc_topology_support *s = hwloc_topology_get_support(t->topo);
    bool supported = s && s->membind && s->membind->alloc_membind && s->membind->bind_membind;

    if (flags & SN__TOPO_NO_MEMBIND)
        return false;
    if (flags & SN__TOPO_FORCE_MEMBIND)
        return supported;
    return supported && t->nnodes > 1;
}

static int init_nodes(struct sn__topology *t, unsigned flags)
{
    int n = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_NUMANODE);
    t->nnodes = n > 0 ? (unsigned)n : 1;
    t->nodes = calloc(t->nnodes, sizeof *t->nodes);
    if (!t->nodes)
        return -ENOMEM;
    bool bind = want_membind(t, flags);
    for (unsigned i = 0; i < t->nnodes; i++) {
        struct node_alloc *na = &t->nodes[i];
        hwloc_obj_t obj = hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_NUMANODE, i);
        na->t = t;
        na->bind = bind && obj;
        if (na->bind && !(na->nodeset = hwloc_bitmap_dup(obj->nodeset)))
            return -ENOMEM;
        na->a = na->bind ? (struct sn_allocator){alloc_bound, free_bound, na}
                         : (struct sn_allocator){alloc_plain, free_plain, na};
    }
    return 0;
}

/* One entry per physical core that has a usable PU; PUs stand in if hwloc found no cores. */
static int init_cores(struct sn__topology *t)
{
    hwloc_obj_type_t type = HWLOC_OBJ_CORE;
    int n = hwloc_get_nbobjs_by_type(t->topo, type);

    if (n <= 0) {
        type = HWLOC_OBJ_PU;
        n = hwloc_get_nbobjs_by_type(t->topo, type);
    }
    t->core_cpu = calloc(n > 0 ? (size_t)n : 1, sizeof *t->core_cpu);
    if (!t->core_cpu)
        return -ENOMEM;
    hwloc_bitmap_t tmp = hwloc_bitmap_alloc();
    if (!tmp)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        hwloc_obj_t obj = hwloc_get_obj_by_type(t->topo, type, (unsigned)i);
        hwloc_bitmap_and(tmp, obj->cpuset, t->usable);
        int first = hwloc_bitmap_first(tmp);
        if (first >= 0)
            t->core_cpu[t->ncores++] = first;
    }
    hwloc_bitmap_free(tmp);
    return t->ncores ? 0 : -ENODEV;
}

int sn__topology_open(struct sn__topology **out, unsigned flags)
{
    struct sn__topology *t = calloc(1, sizeof *t);
    int err = -ENOMEM;

    if (!t)
        return -ENOMEM;
    if (hwloc_topology_init(&t->topo) < 0) {
        err = errno ? -errno : -ENOMEM;
        free(t);
        return err;
    }
    if (hwloc_topology_load(t->topo) < 0) {
        err = errno ? -errno : -EIO;
        goto fail;
    }
    t->usable = hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(t->topo));
    if (!t->usable)
        goto fail;
    hwloc_bitmap_and(t->usable, t->usable, hwloc_topology_get_topology_cpuset(t->topo));
    int w = hwloc_bitmap_weight(t->usable);
    t->ncpus = w > 0 ? (unsigned)w : 0;
    if ((err = init_cores(t)) < 0 || (err = init_nodes(t, flags)) < 0)
        goto fail;
    *out = t;
    return 0;
fail:
    sn__topology_close(t);
    return err;
}

void sn__topology_close(struct sn__topology *t)
{
    if (!t)
        return;
    for (unsigned i = 0; t->nodes && i < t->nnodes; i++)
        hwloc_bitmap_free(t->nodes[i].nodeset);
    free(t->nodes);
    free(t->core_cpu);
    hwloc_bitmap_free(t->usable);
    hwloc_topology_destroy(t->topo);
    free(t);
}

unsigned sn__topology_core_count(const struct sn__topology *t)
{
    return t->ncores;
}
unsigned sn__topology_cpu_count(const struct sn__topology *t)
{
    return t->ncpus;
}
unsigned sn__topology_node_count(const struct sn__topology *t)
{
    return t->nnodes;
}

int sn__topology_cpu_node(const struct sn__topology *t, int cpu)
{
    if (cpu < 0 || !hwloc_bitmap_isset(t->usable, (unsigned)cpu))
        return -EINVAL;
    hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(t->topo, (unsigned)cpu);
    int os_node = pu ? hwloc_bitmap_first(pu->nodeset) : -1;
    if (os_node < 0)
        return 0;
    hwloc_obj_t node = hwloc_get_numanode_obj_by_os_index(t->topo, (unsigned)os_node);
    return node && node->logical_index < t->nnodes ? (int)node->logical_index : 0;
}

int sn__topology_pin_thread(const struct sn__topology *t, int cpu)
{
    if (cpu < 0 || !hwloc_bitmap_isset(t->usable, (unsigned)cpu))
        return -EINVAL;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set)
        return -ENOMEM;
    hwloc_bitmap_only(set, (unsigned)cpu);
    int r = hwloc_set_cpubind(t->topo, set, HWLOC_CPUBIND_THREAD);
    int err = r < 0 ? (errno ? -errno : -EINVAL) : 0;
    hwloc_bitmap_free(set);
    return err;
}

int sn__topology_bind_thread(const struct sn__topology *t, const struct sn__placement *p)
{
    return p->pinned ? sn__topology_pin_thread(t, p->cpu) : 0;
}

const struct sn_allocator *sn__topology_allocator(struct sn__topology *t, int node)
{
    if (node < 0 || (unsigned)node >= t->nnodes)
        return NULL;
    return &t->nodes[node].a;
}

bool sn__topology_allocator_binds(const struct sn__topology *t, int node)
{
    return node >= 0 && (unsigned)node < t->nnodes && t->nodes[node].bind;
}

static void set_bit(void *arg, unsigned cpu)
{
    hwloc_bitmap_set(arg, cpu);
}

/* Fills `cand` (size t->ncpus) from cfg->cpuset; returns the count or -EINVAL after a message. */
static int cpuset_candidates(const struct sn__topology *t, const char *list, int *cand)
{
    char msg[160], have[128];
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    int n, cpu;

    if (!set)
        return -ENOMEM;
    hwloc_bitmap_list_snprintf(have, sizeof have, t->usable);
    n = sn__cpulist_parse(list, set_bit, set, msg, sizeof msg);
    if (n < 0) {
        fprintf(stderr, "libsn: --cpuset: %s\n", msg);
        n = -EINVAL;
    } else if (!hwloc_bitmap_isincluded(set, t->usable)) {
        hwloc_bitmap_andnot(set, set, t->usable);
        char missing[128];
        hwloc_bitmap_list_snprintf(missing, sizeof missing, set);
        fprintf(stderr,
                "libsn: --cpuset %s: CPU %s does not exist or is not allowed "
                "(usable CPUs: %s)\n",
                list, missing, have);
        n = -EINVAL;
    } else {
        n = 0;
        hwloc_bitmap_foreach_begin(cpu, set) cand[n++] = cpu;
        hwloc_bitmap_foreach_end();
    }
    hwloc_bitmap_free(set);
    return n;
}

int sn__topology_select(const struct sn__topology *t, const struct sn_config *cfg,
                        struct sn__placement *out, unsigned cap)
{
    int *cand = calloc(t->ncpus ? t->ncpus : 1, sizeof *cand);
    int ncand;

    if (!cand)
        return -ENOMEM;
    if (cfg->cpuset) {
        ncand = cpuset_candidates(t, cfg->cpuset, cand);
    } else {
        ncand = (int)t->ncores;
        for (int i = 0; i < ncand; i++)
            cand[i] = t->core_cpu[i];
    }
    unsigned n = cfg->smp ? cfg->smp : (unsigned)(ncand > 0 ? ncand : 0);
    if (ncand > 0 && n > (unsigned)ncand && !cfg->unpinned) {
        fprintf(stderr,
                "libsn: --smp %u: %s only %d %s; add --unpinned to run more reactors "
                "than CPUs\n",
                n, cfg->cpuset ? "--cpuset names" : "this machine has", ncand,
                cfg->cpuset ? "CPU(s)" : "usable core(s)");
        ncand = -EINVAL;
    }
    for (unsigned i = 0; ncand > 0 && i < n && i < cap; i++) {
        int cpu = cand[i % (unsigned)ncand];
        out[i] = (struct sn__placement){
            .cpu = cpu, .node = sn__topology_cpu_node(t, cpu), .pinned = !cfg->unpinned};
    }
    free(cand);
    return ncand < 0 ? ncand : (ncand == 0 ? -ENODEV : (int)n);
}
