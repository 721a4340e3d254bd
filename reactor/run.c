/*
 * sn_run: start-up and teardown of the reactor (contract in include/sn/reactor.h).
 *
 * Start-up: discover the machine and pick one placement per core (reactor/topology.c), give
 * each core its state and pools from its NUMA node's allocator, build the mesh with each
 * core's incoming rings on its node, block SIGINT/SIGTERM (threads inherit the mask) and
 * open the signalfd, then start one thread per core. Each thread pins itself, creates its
 * own io_uring (so it is the ring's single issuer) and waker, and waits at a barrier until
 * every core is ready, so no wake-up targets a ring that does not exist yet. Core 0 then
 * runs the app's main function from its run queue.
 *
 * Teardown, after every thread has left its loop (see reactor/loop.c for the shutdown
 * protocol): rings and wakers are closed only once all threads have joined (a MSG_RING must
 * never target a closed ring), then pools, the mesh and the topology are freed.
 */
#include <sn/future.h>
#include <sn/reactor.h>

#include <sn/error.h>
#include <sn/partition.h>

#include "core/alloc.h"
#include "reactor/clock_setup.h"
#include "reactor/core.h"
#include "reactor/sched_slice.h"
#include "reactor/smp_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQ_ENTRIES 256

struct sn__rt *_Atomic sn__rt_current;
static _Atomic int run_active;

/* The last run's final counters, readable after sn_run returns. */
static struct sn_core_metrics *last_metrics;
static unsigned last_ncores;
/* The last run's queue delays, [from * n + to], for runs of up to LAST_DELAY_CORES cores. */
#define LAST_DELAY_CORES 64
static struct sn_mesh_delay *last_delay;
static unsigned last_delay_n;

static void snapshot(const struct sn__core *c, struct sn_core_metrics *m)
{
#define GET(f) atomic_load_explicit(&c->c.f, memory_order_relaxed)
    *m = (struct sn_core_metrics){
        .msgs_in = GET(msgs_in), .msgs_out = GET(msgs_out), .tasks = GET(tasks),
        .cqes = GET(cqes), .sleeps = GET(sleeps), .wakeups_sent = GET(wakeups_sent),
        .stalls = GET(stalls), .stall_max_ns = GET(stall_max_ns),
        .preemptions = GET(preemptions), .timers = GET(timers),
        .external = GET(external), .loops = GET(loops), .cancelled = GET(cancelled),
        .pool_in_use = GET(pool_in_use), .pool_capacity = GET(pool_capacity),
        .fibers = GET(fibers), .fibers_spawned = GET(fibers_spawned),
        .fiber_stack_bytes = GET(fiber_stack_bytes),
        .fiber_stack_high_water = GET(fiber_stack_high_water),
        .batched_sleeps = GET(batched_sleeps), .batch_timeouts = GET(batch_timeouts),
    };
#undef GET
    /* On its own core the gauges are read live, not as last published (every 1024 turns). */
    if (c->id == sn_core_id()) {
        m->pool_in_use = c->sched.pool.in_use + sn__copy_pools_in_use(c);
        m->pool_capacity = c->sched.pool.capacity + sn__copy_pools_capacity(c);
    }
    struct sn_mesh_stats ms;
    sn_mesh_stats(c->mesh, c->id, &ms);
    m->overflow = ms.overflowed;
}

int sn_metrics_core(unsigned core, struct sn_core_metrics *out)
{
    struct sn__rt *rt = sn__ext_enter();
    int rc = 0;
    if (rt) {
        if (core < rt->ncores)
            snapshot(rt->cores[core], out);
        else
            rc = -EINVAL;
        sn__ext_leave();
        return rc;
    }
    if (!last_metrics || core >= last_ncores)
        return -EINVAL;
    *out = last_metrics[core];
    return 0;
}

int sn_metrics_queue_delay(unsigned from, unsigned to, struct sn_mesh_delay *out)
{
    struct sn__rt *rt = sn__ext_enter();
    if (rt) {
        int rc = sn_mesh_queue_delay(rt->mesh, from, to, out);
        sn__ext_leave();
        return rc;
    }
    if (!out || !last_delay || from >= last_delay_n || to >= last_delay_n || from == to)
        return -EINVAL;
    *out = last_delay[from * last_delay_n + to];
    return 0;
}

/* The last run's group figures, [core * SN_SCHED_GROUPS_MAX + id], and whose they are. */
static struct sn_sched_group_metrics *last_groups;
static const struct sn_sched_group *last_group_ptr[SN_SCHED_GROUPS_MAX];
static unsigned last_groups_n;

int sn_metrics_group(unsigned core, const struct sn_sched_group *g,
                     struct sn_sched_group_metrics *out)
{
    if (!g || !out)
        return -EINVAL;
    struct sn__rt *rt = sn__ext_enter();
    if (rt) {
        int rc = -EINVAL;
        if (core < rt->ncores) {
            sn__sched_group_stats(&rt->cores[core]->sched, g, out);
            rc = 0;
        }
        sn__ext_leave();
        return rc;
    }
    if (!last_groups || core >= last_groups_n)
        return -EINVAL;
    unsigned id = 0;
    while (id < SN_SCHED_GROUPS_MAX && last_group_ptr[id] != g)
        id++;
    memset(out, 0, sizeof *out);
    if (id < SN_SCHED_GROUPS_MAX)
        *out = last_groups[core * SN_SCHED_GROUPS_MAX + id];
    return 0;
}

/* Keeps every core's group figures of the run ending now for sn_metrics_group. */
static void snapshot_groups(struct sn__rt *rt)
{
    unsigned n = rt->ncores;
    free(last_groups);
    last_groups_n = 0;
    memset(last_group_ptr, 0, sizeof last_group_ptr);
    if (n > LAST_DELAY_CORES ||
        !(last_groups = calloc((size_t)n * SN_SCHED_GROUPS_MAX, sizeof *last_groups)))
        return;
    last_groups_n = n;
    for (unsigned c = 0; c < n; c++) {
        const struct sn__sched *s = &rt->cores[c]->sched;
        for (unsigned id = 0; id < SN_SCHED_GROUPS_MAX; id++) {
            const struct sn_sched_group *g = s->gq[id].group;
            if (!g)
                continue;
            if (!last_group_ptr[id])
                last_group_ptr[id] = g;
            if (last_group_ptr[id] == g)
                sn__sched_group_stats(s, g, &last_groups[c * SN_SCHED_GROUPS_MAX + id]);
        }
    }
}

/* Keeps the queue delays of the run ending now for sn_metrics_queue_delay. */
static void snapshot_delays(struct sn__rt *rt)
{
    unsigned n = rt->ncores;
    free(last_delay);
    last_delay = NULL;
    last_delay_n = 0;
    if (n > LAST_DELAY_CORES || !(last_delay = calloc((size_t)n * n, sizeof *last_delay)))
        return;
    last_delay_n = n;
    for (unsigned from = 0; from < n; from++)
        for (unsigned to = 0; to < n; to++)
            if (from != to)
                sn_mesh_queue_delay(rt->mesh, from, to, &last_delay[from * n + to]);
}

/* ---- stop --------------------------------------------------------------------------- */

static void wake_all(struct sn__rt *rt)
{
    for (unsigned i = 0; i < rt->ncores; i++)
        sn__wake_from_thread(&rt->cores[i]->waker);
}

void sn__rt_shut_down(struct sn__rt *rt)
{
    if (!atomic_exchange(&rt->stop, 1))
        wake_all(rt);
}

void sn__rt_request_stop(struct sn__rt *rt, int code)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&rt->stop_claim, &expected, 1))
        return;
    /* The code first: whoever sees stop_req set reads the code that goes with it. */
    atomic_store(&rt->exit_code, code);
    atomic_store(&rt->stop_req, 1);
    if (!rt->app)
        atomic_store(&rt->stop, 1); /* no stop hook: the cores shut down at once */
    wake_all(rt);
}

void sn_stop(int code)
{
    struct sn__core *c = sn__core_self();
    if (c) {
        sn__rt_request_stop(c->rt, code);
        return;
    }
    struct sn__rt *rt = sn__ext_enter();
    if (rt) {
        sn__rt_request_stop(rt, code);
        sn__ext_leave();
    }
}

bool sn_stopping(void)
{
    struct sn__core *c = sn__core_self();
    if (c)
        return atomic_load(&c->rt->stop) != 0;
    struct sn__rt *rt = sn__ext_enter();
    if (!rt)
        return false;
    bool stopping = atomic_load(&rt->stop) != 0;
    sn__ext_leave();
    return stopping;
}

/*
 * SIGINT/SIGTERM: sn_run ends with 128 + signo; an app (sn_app_run) with 0, the normal end
 * of a server. A signal that comes while the app's stop hook runs shuts down without it.
 */
static void on_signal(void *arg, int signo)
{
    struct sn__rt *rt = arg;
    if (rt->app && atomic_load(&rt->stop_req) && !atomic_load(&rt->stop)) {
        fprintf(stderr, "%s: second signal, stopping without waiting for the stop hook\n",
                rt->app->name ? rt->app->name : "libsn");
        sn__rt_shut_down(rt);
        return;
    }
    sn__rt_request_stop(rt, rt->app ? 0 : 128 + signo);
}

/* ---- main ----------------------------------------------------------------------------- */

static void main_done(void *arg, int err, uint64_t value)
{
    struct sn__rt *rt = arg;
    if (err) {
        fprintf(stderr, "libsn: main failed: %s\n", sn_strerror(err));
        sn__rt_request_stop(rt, 1);
    } else {
        sn__rt_request_stop(rt, (int)value);
    }
}

static void run_main(void *arg)
{
    struct sn__rt *rt = arg;
    sn_done(rt->main_fn(rt->main_arg), main_done, rt); /* SN_SUCCESS: exit code 0 at once */
}

struct sn_future *sn_when_stopped(void)
{
    struct sn__core *c = sn__core_here(__func__);
    if (c->stop_req_seen)
        return sn_ready(sn__exit_value(c->rt));
    return sn__waiters_add(&c->stopped);
}

/* ---- core threads --------------------------------------------------------------------- */

static void set_error(struct sn__rt *rt, int err)
{
    int expected = 0;
    atomic_compare_exchange_strong(&rt->setup_err, &expected, err);
}

static int core_setup(struct sn__core *c)
{
    struct sn__rt *rt = c->rt;
    int rc = sn__topology_bind_thread(rt->topo, &c->place);
    if (rc < 0)
        return rc;
    if (rt->cfg.sched_slice_us && (rc = sn__sched_slice_set(rt->cfg.sched_slice_us)) < 0 &&
        c->id == 0)
        fprintf(stderr, "libsn: --sched-slice-us %u: %s; the kernel's slice is used\n",
                rt->cfg.sched_slice_us, sn_strerror(rc));
    rc = sn__uring_init(&c->uring, SQ_ENTRIES, rt->cfg.uring_fallback ? SN__URING_FORCE_FALLBACK : 0);
    if (rc < 0)
        return rc;
    c->uring_ok = true;
    (void)sn__uring_register_fd(&c->uring); /* an optimisation: without it, io_uring as before */
    rc = sn__waker_init(&c->waker, &c->uring, rt->cfg.wake_eventfd);
    if (rc < 0)
        return rc;
    c->waker_ok = true;
    rc = sn__waker_arm(&c->waker, &c->uring);
    if (rc == 0 && c->id == 0 && rt->signals_ok)
        rc = sn__signals_arm(&rt->signals, &c->uring);
    if (rc == 0)
        rc = sn__uring_submit_and_poll(&c->uring) < 0 ? -EIO : 0;
    return rc;
}

static void *core_thread(void *arg)
{
    struct sn__core *c = arg;
    struct sn__rt *rt = c->rt;
    int rc = core_setup(c);
    if (rc < 0)
        set_error(rt, rc);
    pthread_barrier_wait(&rt->barrier);
    if (atomic_load(&rt->setup_err)) {
        if (c->uring_ok)
            sn__uring_unregister_fd(&c->uring);
        return NULL;
    }
    sn__sched_bind(&c->sched, 0);
    (void)sn__altstack_init(&c->altstack); /* without it an overflow is a plain SIGSEGV */
    sn__stall_start(&c->stall, (uint64_t)rt->cfg.stall_ms * 1000000u, rt->stall_signal_ok);
    if (c->id == 0)
        sn_later(rt->app ? sn__app_start : run_main, rt);
    sn__loop_run(c);
    sn__stall_stop(&c->stall);
    sn__uring_unregister_fd(&c->uring);
    sn__core_update_gauges(c);
    sn__altstack_exit(&c->altstack);
    sn__sched_bind(NULL, 0);
    return NULL;
}

/* ---- set-up and teardown ------------------------------------------------------------- */

static void free_cores(struct sn__rt *rt)
{
    for (unsigned i = 0; rt->cores && i < rt->ncores; i++) {
        struct sn__core *c = rt->cores[i];
        if (!c)
            continue;
        if (c->uring_ok)
            sn__uring_exit(&c->uring);
        if (c->waker_ok)
            sn__waker_destroy(&c->waker);
        sn__inbox_free(c);
        sn__copy_pools_destroy(c);
        sn__sched_destroy(&c->sched);
        sn__stack_pool_destroy(c->stacks);
        sn__free(c->alloc, c, sizeof *c);
    }
    free(rt->cores);
}

static void save_metrics(struct sn__rt *rt)
{
    free(last_metrics);
    last_metrics = calloc(rt->ncores, sizeof *last_metrics);
    last_ncores = last_metrics ? rt->ncores : 0;
    for (unsigned i = 0; i < last_ncores; i++)
        snapshot(rt->cores[i], &last_metrics[i]);
    snapshot_delays(rt);
    snapshot_groups(rt);
}

/* A core's fiber stacks and shutdown deadline (include/sn/fiber.h). */
static int fiber_setup(struct sn__rt *rt, struct sn__core *c)
{
    unsigned ms = rt->cfg.fiber_stop_timeout_ms;
    c->fiber_stop_timeout_ns =
        (uint64_t)(ms ? ms : SN_CONFIG_DEFAULT_FIBER_STOP_TIMEOUT_MS) * 1000000u;
    const char *check = getenv("SN_FIBER_STACK_CHECK");
    c->sched.fibers.measure_all = check && strcmp(check, "1") == 0;
    int rc = sn__stack_pool_create(&c->stacks);
    if (rc == 0)
        sn__fibers_set_stacks(&c->sched, sn__stack_pool_provider(c->stacks));
    return rc;
}

/* The mesh's sample_every for this run's config (0: sampling off). */
static unsigned delay_sample_every(const struct sn_config *cfg)
{
    if (cfg->delay_sample_every == SN_CONFIG_NO_DELAY_SAMPLE)
        return 0;
    return cfg->delay_sample_every ? cfg->delay_sample_every : SN_CONFIG_DEFAULT_DELAY_SAMPLE;
}

static int make_cores(struct sn__rt *rt)
{
    unsigned n = rt->ncores;
    rt->cores = calloc(n, sizeof *rt->cores);
    const struct sn_allocator **allocs = calloc(n, sizeof *allocs);
    if (!rt->cores || !allocs) {
        free(allocs);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < n; i++) {
        const struct sn_allocator *a = sn__topology_allocator(rt->topo, rt->places[i].node);
        struct sn__core *c = sn__alloc(a, sizeof *c);
        if (!c) {
            free(allocs);
            return -ENOMEM;
        }
        memset(c, 0, sizeof *c);
        rt->cores[i] = c;
        c->id = i;
        c->rt = rt;
        c->alloc = a;
        c->place = rt->places[i];
        c->deferred_tail = &c->deferred_head;
        sn_list_init(&c->calls);
        sn_list_init(&c->orphans);
        sn_list_init(&c->ops);
        c->idle_poll_ns = (uint64_t)rt->cfg.idle_poll_us * 1000u;
        c->io_poll_ns = (uint64_t)rt->cfg.io_poll_us * 1000u;
        c->io_batch_us = rt->cfg.io_batch_us;
        allocs[i] = a;
        int rc = sn__sched_init(&c->sched, i, a);
        if (rc == 0)
            rc = sn__copy_pools_init(c);
        if (rc < 0) {
            free(allocs);
            return rc;
        }
        c->sched.owner = c;
        if ((rc = fiber_setup(rt, c)) < 0) {
            free(allocs);
            return rc;
        }
    }
    struct sn_mesh_config mc = {
        .ncores = n, .allocators = allocs, .overflow_limit = rt->cfg.mesh_overflow_limit,
        .sample_every = delay_sample_every(&rt->cfg)};
    int rc = sn_mesh_create(&mc, &rt->mesh);
    free(allocs);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < n; i++)
        rt->cores[i]->mesh = rt->mesh;
    return 0;
}

/*
 * The run's partitioner for sn_key_owner: the app's, checked against the core count, or a
 * hash partitioner over the cores.
 */
static int make_partition(struct sn__rt *rt)
{
    struct sn_partition *p = rt->app ? rt->app->partition : NULL;
    if (p) {
        uint32_t n = sn_partition_count(p);
        if (n != rt->ncores || sn_partition_kind(p) == SN_PARTITION_ROUND_ROBIN) {
            fprintf(stderr,
                    "libsn: the app's partitioner (%s, %u partitions) does not fit %u "
                    "cores (build it with sn_config_core_count partitions, not "
                    "round-robin)\n",
                    sn_partition_kind_name(sn_partition_kind(p)), n, rt->ncores);
            return -EINVAL;
        }
        rt->partition = p;
        return 0;
    }
    struct sn_partition_config pc = {.kind = SN_PARTITION_HASH, .n = rt->ncores};
    int rc = sn_partition_create(&pc, NULL, 0, &rt->partition);
    rt->owns_partition = rc == 0;
    return rc;
}

int sn_config_core_count(const struct sn_config *cfg)
{
    struct sn_config defaults;
    if (!cfg) {
        sn_config_init(&defaults);
        cfg = &defaults;
    }
    struct sn__topology *t;
    int rc = sn__topology_open(&t, 0);
    if (rc < 0)
        return rc;
    int n = sn__topology_select(t, cfg, NULL, 0);
    sn__topology_close(t);
    return n == 0 ? -EINVAL : n;
}

static int prepare(struct sn__rt *rt)
{
    int rc = sn__topology_open(&rt->topo, 0);
    if (rc < 0)
        return rc;
    int n = sn__topology_select(rt->topo, &rt->cfg, NULL, 0);
    if (n <= 0)
        return n < 0 ? n : -EINVAL;
    rt->ncores = (unsigned)n;
    rt->places = calloc(rt->ncores, sizeof *rt->places);
    rt->snap[0] = calloc(2 * rt->ncores, sizeof(uint64_t));
    rt->snap[1] = calloc(2 * rt->ncores, sizeof(uint64_t));
    rt->threads = calloc(rt->ncores, sizeof *rt->threads);
    if (!rt->places || !rt->snap[0] || !rt->snap[1] || !rt->threads)
        return -ENOMEM;
    sn__topology_select(rt->topo, &rt->cfg, rt->places, rt->ncores);
    rc = make_partition(rt);
    return rc < 0 ? rc : make_cores(rt);
}

static void release(struct sn__rt *rt)
{
    free_cores(rt);
    sn_mesh_destroy(rt->mesh);
    if (rt->owns_partition)
        sn_partition_destroy(rt->partition);
    sn__topology_close(rt->topo);
    free(rt->places);
    free(rt->snap[0]);
    free(rt->snap[1]);
    free(rt->threads);
    free(rt);
}

static int start_and_join(struct sn__rt *rt)
{
    unsigned started = 0;
    int rc = pthread_barrier_init(&rt->barrier, NULL, rt->ncores);
    if (rc)
        return -rc;
    sn__set_core_count(rt->ncores);
    atomic_store(&sn__rt_current, rt);
    for (; started < rt->ncores; started++) {
        rc = pthread_create(&rt->threads[started], NULL, core_thread, rt->cores[started]);
        if (rc)
            break;
    }
    if (started < rt->ncores) {
        /* The barrier counts every core: stand in for the missing ones, failing set-up. */
        set_error(rt, -rc);
        for (unsigned i = started; i < rt->ncores; i++)
            pthread_barrier_wait(&rt->barrier);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(rt->threads[i], NULL);
    atomic_store(&sn__rt_current, NULL);
    while (atomic_load(&sn__ext_active))
        sched_yield();
    sn__set_core_count(0);
    pthread_barrier_destroy(&rt->barrier);
    return atomic_load(&rt->setup_err);
}

int sn_run(const struct sn_config *config, sn_main_fn main_fn, void *arg)
{
    if (!main_fn)
        return -EINVAL;
    return sn__run(config, main_fn, arg, NULL);
}

int sn__run(const struct sn_config *config, sn_main_fn main_fn, void *arg, const struct sn_app *app)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&run_active, &expected, 1))
        return -EBUSY;
    struct sn__rt *rt = calloc(1, sizeof *rt);
    if (!rt) {
        atomic_store(&run_active, 0);
        return -ENOMEM;
    }
    if (config)
        rt->cfg = *config;
    else
        sn_config_init(&rt->cfg);
    rt->main_fn = main_fn;
    rt->main_arg = arg;
    sn__clock_setup(); /* sn_now_ns() from the TSC where it can be trusted (once) */
    rt->app = app;
    if (!rt->cfg.keep_nofile_limit)
        (void)sn__raise_nofile(); /* a failure is reported and the run goes on */

    sigset_t old;
    int rc = prepare(rt);
    bool blocked = false;
    if (rc == 0 && sn__signals_block(&old) == 0) {
        blocked = true;
        rt->signals_ok = sn__signals_open(&rt->signals, on_signal, rt) == 0;
    }
    bool guarded = rc == 0 && sn__fiber_guard_install() == 0;
    struct sigaction old_stall;
    if (rc == 0 && rt->cfg.stall_ms)
        rt->stall_signal_ok = sn__stall_install(&old_stall) == 0;
    if (rc == 0)
        rc = start_and_join(rt);
    if (rt->stall_signal_ok) /* every core thread has ended, with its timer */
        sn__stall_uninstall(&old_stall);
    if (guarded)
        sn__fiber_guard_uninstall();
    if (rc == 0)
        rc = atomic_load(&rt->exit_code);
    if (rt->cores && rt->mesh)
        save_metrics(rt);
    /* Rings first (their armed reads use the signal and eventfd buffers), then the fds. */
    free_cores(rt);
    rt->cores = NULL;
    if (rt->signals_ok)
        sn__signals_close(&rt->signals);
    if (blocked)
        sn__signals_restore(&old);
    release(rt);
    atomic_store(&run_active, 0);
    return rc;
}
