/*
 * Internal: machine discovery with hwloc, choice of the CPUs reactors run on, thread pinning,
 * and per-NUMA-node allocators.
 *
 * Life cycle: sn__topology_open() once (any thread, before reactors start), then
 * sn__topology_select() to get one placement per reactor, then each reactor thread calls
 * sn__topology_bind_thread() on itself, and memory for a core comes from
 * sn__topology_allocator(t, placement.node). sn__topology_close() after every reactor has
 * stopped and every block from its allocators has been freed.
 *
 * After open, the topology is only read, so every function except close may be called from
 * any thread concurrently (hwloc allows concurrent reads of a loaded topology).
 */
#ifndef SN_REACTOR_TOPOLOGY_H
#define SN_REACTOR_TOPOLOGY_H

#include <stdbool.h>
#include <sn/common.h>
#include <sn/config.h>

struct sn__topology;

/* Where one reactor runs. */
struct sn__placement {
    int cpu;     /* OS CPU number (as in taskset, /proc/cpuinfo) */
    int node;    /* NUMA node logical index, 0..sn__topology_node_count()-1 */
    bool pinned; /* false in unpinned mode: the thread is not bound, `cpu` only picks `node` */
};

/* Flags for sn__topology_open. */
enum {
    SN__TOPO_NO_MEMBIND = 1 << 0,    /* allocators always use aligned_alloc (tests) */
    SN__TOPO_FORCE_MEMBIND = 1 << 1, /* bind even on a single-node machine (tests) */
};

/*
 * Discovers the machine. Returns 0 and *out, or -ENOMEM / a negative errno from hwloc.
 * Any thread.
 */
int sn__topology_open(struct sn__topology **out, unsigned flags);

/* Frees the topology and its allocators. NULL is fine. */
void sn__topology_close(struct sn__topology *t);

/* Physical cores (with at least one usable PU), usable PUs, NUMA nodes (at least 1). */
unsigned sn__topology_core_count(const struct sn__topology *t);
unsigned sn__topology_cpu_count(const struct sn__topology *t);
unsigned sn__topology_node_count(const struct sn__topology *t);

/*
 * Chooses the reactors' CPUs from cfg->smp, cfg->cpuset and cfg->unpinned:
 *   - default: the first PU of each physical core, in hwloc's logical order;
 *   - cpuset: exactly the listed CPUs, in increasing order (one reactor per CPU);
 *   - smp N: the first N of those;
 *   - unpinned: N may exceed the CPUs; placements wrap around the candidates, pinned=false.
 * Candidates are the CPUs the machine (cgroup) allows, not the calling thread's affinity, so
 * a pinned caller does not shrink the choice.
 *
 * Writes up to `cap` placements to `out` and returns how many reactors the config asks for
 * (call with cap 0 to size the array; nothing is written past cap). Returns -EINVAL after a
 * one-line message on stderr (prefixed "libsn: ") for a bad --cpuset, a CPU that does not
 * exist or is not allowed, or smp larger than the candidates without unpinned. Any thread.
 */
int sn__topology_select(const struct sn__topology *t, const struct sn_config *cfg,
                        struct sn__placement *out, unsigned cap);

/*
 * Pins the calling thread to OS CPU `cpu` (hwloc_set_cpubind, HWLOC_CPUBIND_THREAD).
 * Returns 0, -EINVAL for a CPU that is not usable, or the negative errno from the OS.
 */
int sn__topology_pin_thread(const struct sn__topology *t, int cpu);

/* Pins the calling thread per `p`: sn__topology_pin_thread(p->cpu), or nothing when unpinned. */
int sn__topology_bind_thread(const struct sn__topology *t, const struct sn__placement *p);

/* NUMA node logical index of OS CPU `cpu`, or -EINVAL when it is not usable. */
int sn__topology_cpu_node(const struct sn__topology *t, int cpu);

/*
 * Allocator whose blocks live on NUMA node `node` (logical index), owned by the topology and
 * valid until sn__topology_close. Blocks are SN_CACHELINE aligned. On a multi-node machine
 * with memory-binding support they come from hwloc_alloc_membind (whole pages, bound to the
 * node); otherwise (single node, no support, SN__TOPO_NO_MEMBIND) from aligned_alloc.
 * Safe from any thread. Returns NULL for a node out of range.
 */
const struct sn_allocator *sn__topology_allocator(struct sn__topology *t, int node);

/* True when `node`'s allocator binds memory (for tests and diagnostics). */
bool sn__topology_allocator_binds(const struct sn__topology *t, int node);

/*
 * Parses a CPU list ("0-1,3", "0-7:2", "5"): comma-separated CPU numbers or ranges A-B
 * (A <= B) with an optional :STRIDE (>= 1); CPU numbers below SN__CPU_LIMIT. Calls
 * `set(arg, cpu)` for each CPU (maybe twice for overlaps). Returns the number of CPUs named,
 * or -EINVAL for bad syntax (empty list, empty item, reversed range, trailing junk) and
 * -ERANGE for a CPU number >= SN__CPU_LIMIT, writing a message to `err` (size errlen) when
 * it is not NULL. Pure function: any thread.
 */
#define SN__CPU_LIMIT 8192
int sn__cpulist_parse(const char *s, void (*set)(void *arg, unsigned cpu), void *arg, char *err,
                      size_t errlen);

#endif
