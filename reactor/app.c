/*
 * sn_app_run: the app skeleton's lifecycle (contract in include/sn/app.h), and sn_key_owner.
 *
 * The phases live on core 0, in the runtime's app_* fields, touched by core 0 only: start
 * runs from core 0's run queue once the cores are up (reactor/run.c); the stop request is
 * seen by core 0's loop (reactor/loop.c), which calls sn__app_stop_requested; the stop hook
 * runs once start has settled, and its end makes the cores shut down (sn__rt_shut_down).
 */
#include <sn/app.h>
#include <sn/error.h>
#include <sn/future.h>
#include <sn/partition.h>

#include "reactor/core.h"

#include <errno.h>
#include <stdio.h>

enum { APP_STARTING, APP_RUNNING, APP_STOPPING };

static const char *app_name(const struct sn__rt *rt)
{
    return rt->app->name ? rt->app->name : "libsn";
}

static void stop_done(void *arg, int err, uint64_t value)
{
    (void)value;
    struct sn__rt *rt = arg;
    if (err) {
        fprintf(stderr, "%s: stop failed: %s\n", app_name(rt), sn_strerror(err));
        rt->app_failed = true;
    }
    if (rt->app_failed) /* stop_req is set, so the code claimed at the request is overridden */
        atomic_store(&rt->exit_code, 1);
    sn__rt_shut_down(rt);
}

static void run_stop_hook(struct sn__rt *rt)
{
    rt->app_phase = APP_STOPPING;
    struct sn_future *f = rt->app->stop ? rt->app->stop(rt->app->arg) : SN_SUCCESS;
    sn_done(f, stop_done, rt);
}

static void start_done(void *arg, int err, uint64_t value)
{
    (void)value;
    struct sn__rt *rt = arg;
    rt->app_phase = APP_RUNNING;
    if (err) {
        fprintf(stderr, "%s: start failed: %s\n", app_name(rt), sn_strerror(err));
        rt->app_failed = true;
        sn__rt_request_stop(rt, 1); /* core 0 sees it at its next turn, or saw it already */
    }
    if (rt->app_stop_pending)
        run_stop_hook(rt);
}

void sn__app_start(void *arg)
{
    struct sn__rt *rt = arg;
    rt->app_phase = APP_STARTING;
    sn_done(rt->app->start(rt->app->arg), start_done, rt);
}

void sn__app_stop_requested(struct sn__rt *rt)
{
    if (rt->app_phase == APP_STARTING)
        rt->app_stop_pending = true; /* start_done runs the hook */
    else if (rt->app_phase == APP_RUNNING)
        run_stop_hook(rt);
}

int sn_app_run(const struct sn_config *cfg, const struct sn_app *app)
{
    const char *name = app && app->name ? app->name : "libsn";
    if (!app || !app->start) {
        fprintf(stderr, "%s: sn_app_run needs an app with a start function\n", name);
        return 1;
    }
    int rc = sn__run(cfg, NULL, NULL, app);
    if (rc < 0) {
        fprintf(stderr, "%s: cannot run: %s\n", name, sn_strerror(rc));
        return 1;
    }
    return rc;
}

unsigned sn_key_owner(const void *key, size_t len)
{
    struct sn__core *c = sn__core_self();
    return c ? sn_partition(c->rt->partition, key, len) : SN_NO_CORE;
}

unsigned sn_key_owner_u64(uint64_t key)
{
    struct sn__core *c = sn__core_self();
    return c ? sn_partition_u64(c->rt->partition, key) : SN_NO_CORE;
}
