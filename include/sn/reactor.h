/*
 * The reactor: one thread per selected core, each running its own loop on its own io_uring
 * (see docs/ARCHITECTURE.md, "Reactor"). sn_run starts the cores, runs the app's main
 * function on core 0, and returns the exit code after a graceful shutdown.
 *
 * Shutdown (sn_stop, SIGINT, SIGTERM, or main's future settling; for an app run by
 * sn_app_run, include/sn/app.h, only after its stop hook, which runs first while every core
 * still works normally): every core stops taking new work at once: new cross-core calls (sn_submit_to, sn_send, ...) and external
 * submissions fail with -ECANCELED, timers are disarmed and sleep futures fail with
 * -ECANCELED. Work already in flight runs to completion: requests already sent are handled
 * and answered, tasks and continuations run, io_uring operations complete (they are
 * cancelled when still pending). When no core has anything left, calls still waiting for an
 * answer fail with -ECANCELED (every future settles exactly once), the threads exit, and
 * everything is freed.
 */
#ifndef SN_REACTOR_H
#define SN_REACTOR_H

#include <sn/common.h>
#include <sn/config.h>

#include <stdbool.h>

SN_BEGIN_DECLS

struct sn_future;

/*
 * The app's entry point, run as a task on core 0 once every core is up. It returns a future
 * whose outcome ends the run when it settles: its value becomes the exit code (a failure
 * gives exit code 1, with a message on stderr; SN_SUCCESS gives 0 at once). A server that
 * runs until sn_stop or a signal returns sn_when_stopped().
 */
typedef struct sn_future *(*sn_main_fn)(void *arg);

/*
 * Starts the reactor as `config` says (NULL: the defaults of sn_config_init), runs
 * main_fn(arg) on core 0, and blocks until shutdown completes. Returns the exit code given
 * to sn_stop (or main's), or a negative errno when start-up failed: -EINVAL (bad --cpuset or
 * --smp, message on stderr), -EBUSY (a reactor already runs in this process), -ENOMEM, or the
 * error of io_uring/eventfd/signalfd set-up. SIGINT and SIGTERM are handled by the reactor
 * while it runs (they call sn_stop(128 + signo); sn_app_run, include/sn/app.h, makes them
 * exit code 0 and runs the app's stop hook first). Raises the process's soft open-file limit
 * to its hard limit first (see sn_config.keep_nofile_limit). Any thread that is not a core.
 */
SN_API int sn_run(const struct sn_config *config, sn_main_fn main_fn, void *arg);

/*
 * Starts the graceful shutdown with exit code `code` (the first call's code wins; later
 * calls do nothing): at once for sn_run, after the app's stop hook for sn_app_run. Returns at
 * once. Any reactor core, or any other thread while sn_run runs.
 */
SN_API void sn_stop(int code);

/*
 * True once the cores shut down (work submitted now fails with -ECANCELED): from sn_stop on
 * for sn_run, from the end of the stop hook on for sn_app_run. Any thread.
 */
SN_API bool sn_stopping(void);

/*
 * A future on the calling core that succeeds with the exit code once a stop is requested
 * (sn_stop, SIGINT/SIGTERM, main's future settling): what a server's main returns to run
 * until stopped, and how any core learns of the stop to wind down its own work. For
 * sn_app_run it settles when the stop hook starts, while every core still works (cross-core
 * calls succeed). Already settled once the stop was requested. Any reactor core.
 */
SN_API SN_MUST_USE struct sn_future *sn_when_stopped(void);

/*
 * Runs fn(arg) on core `core` from a thread that is not a core (a plain pthread, a library
 * callback thread): the call goes through the core's MPSC inbox and wakes it if it sleeps.
 * `arg` passes to the core as is; its ownership moves with it (fn runs exactly once when 0
 * is returned, never otherwise). 0; -EINVAL for a bad core; -ECANCELED when no reactor runs
 * or shutdown has begun; -ENOMEM. Any thread (also a core, though sn_send is cheaper there).
 */
SN_API int sn_submit_external(unsigned core, void (*fn)(void *arg), void *arg);

SN_END_DECLS

#endif
