/*
 * The app skeleton: what a server's main() hands to libsn so that starting, stopping and the
 * exit code are libsn's business, not each app's.
 *
 *     static struct sn_future *start(void *arg)   // core 0, once every core is up
 *     {
 *         struct server *s = arg;
 *         return sn_then(sn_listen(&s->listen_cfg), keep_listener, s);  // "started"
 *     }
 *     static struct sn_future *stop(void *arg)    // SIGTERM, SIGINT or sn_stop
 *     {
 *         struct server *s = arg;                  // every core still runs here:
 *         return sn_then(sn_listener_close(s->listener), wait_for_requests, s);
 *     }
 *     int main(int argc, char **argv)
 *     {
 *         struct sn_config cfg;
 *         int rc = sn_config_parse(&argc, argv, usage, &cfg);
 *         if (rc != SN_CONFIG_CONTINUE)
 *             return rc;
 *         struct sn_app app = {.name = "sn-demo", .start = start, .stop = stop, .arg = &server};
 *         return sn_app_run(&cfg, &app);           // 0 after SIGTERM/SIGINT
 *     }
 *
 * Lifecycle of sn_app_run:
 *   1. The cores start; start(arg) runs on core 0. Its future says only "started": its value
 *      is ignored, and a server keeps running after it settles, so no server ends by
 *      returning the wrong future. A failed start prints "<name>: start failed: <error>" and
 *      the run goes on to step 3 with exit code 1.
 *   2. The server runs until a stop is requested: SIGTERM or SIGINT (exit code 0), sn_stop(code)
 *      (exit code `code`; the first request's code wins), or a failed start.
 *   3. Stop requested: sn_when_stopped() futures settle on every core, and stop(arg) runs on
 *      core 0 (after start has settled, never at the same time) while every core still runs:
 *      cross-core calls, timers and io work as before, new connections are still accepted by
 *      listeners that stay open. This is where the app closes its listeners, stops sharded
 *      services, closes its gates and waits for the requests in flight. A failed stop prints
 *      "<name>: stop failed: <error>" and makes the exit code 1. A second SIGTERM/SIGINT in
 *      this step does not wait for stop's future any longer.
 *   4. When stop's future settles, the reactor shuts down as for sn_run (include/sn/reactor.h):
 *      new cross-core work is refused, in-flight work finishes, io is cancelled, the cores
 *      join, and sn_app_run returns the exit code.
 */
#ifndef SN_APP_H
#define SN_APP_H

#include <sn/common.h>
#include <sn/config.h>

SN_BEGIN_DECLS

struct sn_future;
struct sn_partition;

struct sn_app {
    /* For messages on stderr ("<name>: ..."); NULL: "libsn". */
    const char *name;
    /* Required. Core 0, once every core is up; its future settles when the app started. */
    struct sn_future *(*start)(void *arg);
    /* Optional (NULL: nothing to do). Core 0, when a stop is requested; see step 3 above. */
    struct sn_future *(*stop)(void *arg);
    /* Passed to start and stop. */
    void *arg;
    /*
     * Optional: the run's partitioner, which sn_key_owner uses on every core. Built before
     * sn_app_run with sn_config_core_count(&cfg) partitions (another count fails the run);
     * not round-robin (it keeps a cursor per caller); not changed while the run lasts. The
     * caller owns it and frees it after sn_app_run returns. NULL: a hash partitioner over the
     * cores (SN_PARTITION_HASH), made and freed by libsn.
     */
    struct sn_partition *partition;
};

/*
 * Runs `app` on the reactor `cfg` describes (NULL: the defaults) through the lifecycle above
 * and returns the process exit code: 0 after SIGTERM/SIGINT, the code of sn_stop, 1 after a
 * failed start or stop, or 1 after "<name>: <error>" on stderr when the reactor cannot start
 * (bad --cpuset, a partitioner that does not fit, io_uring set-up). Blocks until the run ends.
 * Any thread that is not a core; one run at a time per process (as sn_run).
 */
SN_API int sn_app_run(const struct sn_config *cfg, const struct sn_app *app);

/*
 * The core that owns `key` (`len` bytes; key may be NULL when len is 0) under the run's
 * partitioner: sn_app.partition, or for sn_run and an app without one, a hash partitioner
 * over the cores. Always < sn_core_count(). Any reactor core; SN_NO_CORE on other threads.
 */
SN_API unsigned sn_key_owner(const void *key, size_t len);

/* sn_key_owner for a u64 key (the partitioner's sn_partition_u64). Any reactor core; SN_NO_CORE
 * on other threads. */
SN_API unsigned sn_key_owner_u64(uint64_t key);

SN_END_DECLS

#endif
