/*
 * Start-up configuration shared by every libsn application, and the one command-line parser
 * that fills it (--smp, --cpuset, --idle-poll-us, --io-poll-us, --io-batch-us, --stall-ms,
 * --unpinned, --sched-slice-us, --mesh-overflow-limit, --help, --version).
 *
 * Typical use in an app with options of its own:
 *
 *     int main(int argc, char **argv)
 *     {
 *         struct sn_config cfg;
 *         int rc = sn_config_parse(&argc, argv, "usage: sn-echo [--port N]\n", &cfg);
 *         if (rc != SN_CONFIG_CONTINUE)
 *             return rc;                      // --help/--version (0) or a bad value (2)
 *         // argv[1..argc-1] now holds only what libsn did not recognise, in order:
 *         // parse --port here (getopt_long works on the compacted argv).
 *         return sn_run(&cfg, app_main, &app);
 *     }
 *
 * An app without options of its own calls sn_config_reject_extra(argc, argv) after parsing.
 */
#ifndef SN_CONFIG_H
#define SN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sn/common.h>

SN_BEGIN_DECLS

struct sn_config {
    /* Number of reactor cores; 0 means one per physical core (or one per --cpuset CPU). */
    unsigned smp;
    /*
     * CPU list like taskset/Seastar ("0-1,3", "0-7:2"), or NULL for all CPUs. One reactor per
     * listed CPU (the first `smp` of them when smp is set). Not copied: the string must
     * outlive sn_run (argv strings do).
     */
    const char *cpuset;
    /*
     * Busy-poll this long with no work before sleeping in io_uring (microseconds), after
     * cross-core work: messages handled or sent, calls waiting for a reply, external calls.
     * A core that polls sees the next message at once; a sleeping one needs a wake-up.
     */
    unsigned idle_poll_us;
    /*
     * The same after work that came only from io_uring (network, files): the kernel wakes a
     * sleeping core when an operation completes, so polling for the next completion buys a
     * few microseconds of latency for CPU time a request would otherwise not cost (with the
     * old single setting of 200 us, sn-httpd used 1.5x the CPU per request of
     * --idle-poll-us 0). Microseconds; the default 0 sleeps at once.
     */
    unsigned io_poll_us;
    /*
     * Batch the sleeps that follow network work (microseconds; 0, the default, is off). A
     * core about to sleep on whose connections n > 1 received bytes since it last slept
     * sleeps until n completions are there (n at most SN_CONFIG_IO_BATCH_MAX), or until
     * n / SN_CONFIG_IO_BATCH_MAX of io_batch_us have passed with at least one, and only then
     * runs them: while many connections are busy, fewer kernel entries and wake-ups per
     * request, for up to io_batch_us of added latency per response. Each awaited completion
     * gets io_batch_us / SN_CONFIG_IO_BATCH_MAX, and a core batches only while its batched
     * sleeps keep that pace: while, over the last several, they found at least 3/4 of the
     * completions they waited for. Where completions come further apart (a moderate load),
     * it soon sleeps plainly and keeps its latency, until two sleeps in a row find at least
     * SN_CONFIG_IO_BATCH_MAX / 2 connections active after a few plain ones, or a probe (a
     * batch of 8 once in 256 plain sleeps) fills; where they come faster (many busy
     * connections), batches fill and go on. A core serving one connection
     * at a time sleeps as before, and so does one with cross-core work about (a message
     * would wait for the batch too) or that is stopping; a message that reaches a core in a
     * batched sleep waits at most io_batch_us. Needs Linux 6.12 (IORING_FEAT_MIN_TIMEOUT);
     * ignored on older kernels.
     */
    unsigned io_batch_us;
    /* Report a task that holds its core longer than this (milliseconds); 0 disables. */
    unsigned stall_ms;
    /*
     * Do not pin reactor threads, and allow more reactors than CPUs (testing, overcommitted
     * machines). Memory is still bound to the node of the CPU each core would have had.
     */
    bool unpinned;
    /* Testing knobs: force plain io_uring setup / eventfd wake-ups (also env
     * SN_URING_FALLBACK=1 / SN_WAKE_EVENTFD=1). */
    bool uring_fallback;
    bool wake_eventfd;
    /*
     * Messages one core may hold in its mesh overflow (what does not fit the rings to the
     * other cores) before sn_send and the like fail with -ENOBUFS; replies are not refused
     * (include/sn/mesh.h, overflow_limit). 0: SN_MESH_DEFAULT_OVERFLOW_LIMIT.
     */
    size_t mesh_overflow_limit;
    /*
     * sn_run raises the soft RLIMIT_NOFILE to the hard limit before starting (a server needs
     * a descriptor per connection, and the inherited soft limit is often 1024); it never
     * lowers a limit, and if raising fails it prints a warning and goes on. true: leave the
     * limit as inherited.
     */
    bool keep_nofile_limit;
    /*
     * How long a core's fibers may keep running after the stop began (milliseconds) before
     * the ones still alive are reported and abandoned (include/sn/fiber.h, "Shutdown").
     * 0: SN_CONFIG_DEFAULT_FIBER_STOP_TIMEOUT_MS.
     */
    unsigned fiber_stop_timeout_ms;
    /*
     * Queue-delay sampling: one cross-core message in this many per ordered pair of cores
     * is stamped when it is published, and the receiver records how long it waited
     * (sn_metrics_queue_delay; fewer samples while a receiver is a deep backlog behind, see
     * sample_every in sn/mesh.h). 0: SN_CONFIG_DEFAULT_DELAY_SAMPLE;
     * SN_CONFIG_NO_DELAY_SAMPLE turns it off. At most 65535.
     */
    unsigned delay_sample_every;
    /*
     * The scheduler slice each reactor thread asks for (microseconds; Linux 6.12 and later
     * clamp it to 100..100000 and use it as the thread's EEVDF slice, older kernels ignore
     * it); 0 keeps the kernel's default. A polling core yields its CPU every few
     * microseconds so that a thread sharing it runs at once, and each yield while another
     * task waits costs the core one slice of its place in the queue: on a CPU shared with a
     * task that never sleeps, a short slice keeps the core from being starved. When the
     * kernel refuses, sn_run says so on stderr and goes on.
     */
    unsigned sched_slice_us;
};

#define SN_CONFIG_DEFAULT_IDLE_POLL_US          200
#define SN_CONFIG_DEFAULT_IO_POLL_US            0
#define SN_CONFIG_DEFAULT_IO_BATCH_US           0
#define SN_CONFIG_IO_BATCH_MAX                  32
#define SN_CONFIG_DEFAULT_STALL_MS              25
#define SN_CONFIG_DEFAULT_FIBER_STOP_TIMEOUT_MS 5000
#define SN_CONFIG_DEFAULT_DELAY_SAMPLE          64
#define SN_CONFIG_NO_DELAY_SAMPLE               UINT32_MAX

/* sn_config_parse's "go on" return value; every other value is a process exit code. */
#define SN_CONFIG_CONTINUE (-1)
/* Exit code for a bad command line. */
#define SN_CONFIG_EXIT_USAGE 2

/* Fills `cfg` with the defaults (all cores, pinned, the defaults above). Any thread. */
SN_API void sn_config_init(struct sn_config *cfg);

/*
 * Initialises `cfg` with sn_config_init, then parses the libsn options out of argv:
 * `--opt VALUE` and `--opt=VALUE` forms; "--" ends libsn's parsing (it and everything after
 * it stay for the app). Recognised options are removed from argv, which is compacted in
 * place (argv[0] stays, order of the rest is kept, argv[*argc] is set to NULL), and *argc
 * is updated. Unknown options and their values are left for the app.
 *
 * Returns SN_CONFIG_CONTINUE when the app should go on. Otherwise returns the exit code the
 * app should return from main: 0 after --help (shared help on stdout, preceded by
 * `app_usage` when not NULL) or --version, and SN_CONFIG_EXIT_USAGE (2) for a missing or bad
 * value, after a one-line message on stderr naming the option and the accepted range.
 * Never calls exit(). --cpuset syntax is checked here; whether its CPUs exist is checked
 * when sn_run discovers the machine. Any thread (not reentrant on the same argv).
 */
SN_API int sn_config_parse(int *argc, char **argv, const char *app_usage, struct sn_config *cfg);

/*
 * Parses the libsn options out of argv over the values `cfg` already holds, for an app with
 * defaults of its own: sn_config_init(&cfg), set them, then this; an option on the command
 * line overrides the app's value, one absent leaves it. The caller owns cfg and argv; argv
 * is compacted in place and *argc updated exactly as by sn_config_parse, and cfg->cpuset may
 * point into argv afterwards (keep argv alive while cfg is used). The shared --help still
 * shows libsn's defaults, so the app's usage text should name its own.
 *
 * Returns SN_CONFIG_CONTINUE, or the exit code for main: 0 after --help or --version,
 * SN_CONFIG_EXIT_USAGE (2) for a missing or bad value (after a one-line message on stderr);
 * then cfg may hold the options parsed before the bad one, and should not be run. Never
 * calls exit(). Any thread (not reentrant on the same argv).
 */
SN_API int sn_config_parse_from(int *argc, char **argv, const char *app_usage,
                                struct sn_config *cfg);

/*
 * For apps without options of their own, after sn_config_parse: returns SN_CONFIG_CONTINUE
 * when argv holds nothing but argv[0], else prints "unknown argument" to stderr and returns
 * SN_CONFIG_EXIT_USAGE. Any thread.
 */
SN_API int sn_config_reject_extra(int argc, char **argv);

/*
 * The number of cores sn_run (or sn_app_run) would start for `cfg` (NULL: the defaults),
 * with the machine's topology, --smp, --cpuset and --unpinned resolved as sn_run resolves
 * them: what a partitioner built before the run needs (include/sn/app.h). A count, or
 * -EINVAL (a --cpuset naming CPUs that do not exist, --smp beyond the CPUs when pinned;
 * message on stderr) or the error of the topology discovery. Discovers the machine each time
 * (a few ms). Any thread.
 */
SN_API int sn_config_core_count(const struct sn_config *cfg);

SN_END_DECLS

#endif
