/*
 * Test support for the tests that drive the sample servers as separate processes (test_echo,
 * test_kv_server, test_httpd, test_faults, test_bad_input, test_load): find build/bin/sn-<app>,
 * start it on a free loopback port, wait until it accepts, stop it with SIGTERM and time the
 * drain, read its memory from /proc, talk to it with bounded waits. This is the interface of
 * server_proc.c, which (like every .c file in tests/support) is linked into every test.
 *
 * Every process started here is tracked and killed by su_reap_all(): tests run it as their
 * .fini (Criterion and the TSan shim both call it after a failed assertion too), and it is also
 * registered with atexit, so a Criterion worker (each test runs in its own child process of the
 * runner) that ends any ordinary way takes its servers with it. Each child also gets
 * PR_SET_PDEATHSIG=SIGKILL, so a test process that dies (timeout, crash) takes its servers and
 * forked clients with it. Binaries are found next to the test binary: <build>/tests/test_x ->
 * <build>/bin/sn-<app>, so each build (asan, tsan) drives its own.
 *
 * All of it runs on the test's own thread (the one that called su_fork: PR_SET_PDEATHSIG is
 * bound to the forking thread); functions named "assert" or documented so assert with cr_assert.
 */
#ifndef SN_TEST_SUPPORT_SERVER_PROC_H
#define SN_TEST_SUPPORT_SERVER_PROC_H

#include <criterion/criterion.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "tests/net_util.h"

/* Placeholders in su_start_args' arguments: replaced by s->port and s->port2 (free ports). */
#define SU_PORT  "{port}"
#define SU_PORT2 "{port2}"

struct su_server {
    pid_t pid;
    uint16_t port;
    uint16_t port2; /* a second free port, when the arguments ask for one (SU_PORT2) */
    char app[16];
};

/* When not 0, servers started afterwards get this RLIMIT_NOFILE (soft and hard). */
extern rlim_t su_child_nofile;

/* Kills and reaps every child still tracked: the tests' .fini (also run at exit). */
void su_reap_all(void);

/* Path of <build>/bin/sn-<app> into out; asserts that it is there. */
void su_bin(const char *app, char *out, size_t cap);

/* A loopback port free at the time of the call, or 0. */
uint16_t su_free_port(void);

/*
 * Raises RLIMIT_NOFILE to `want` (the hard limit too, where the process may): children
 * started afterwards inherit it. Returns the soft limit in force afterwards.
 */
rlim_t su_raise_nofile(rlim_t want);

/*
 * Forks; the child dies with this process (PR_SET_PDEATHSIG) and is tracked for
 * su_reap_all. Returns the pid in the parent and 0 in the child, like fork. The child starts
 * with no tracked children of its own.
 */
pid_t su_fork(void);

/*
 * Starts `path` with argv (stdout to /dev/null; stderr too when quiet, else kept for sanitizer
 * reports). The pid, or -1.
 */
pid_t su_spawn(const char *path, char *const argv[], bool quiet);

/* True while the process runs (not exited, not a zombie waiting to be reaped). */
bool su_alive(pid_t pid);

/* Waits up to ms for pid to exit: its wait status, or -1 (it is then killed and reaped). */
int su_wait_exit(pid_t pid, unsigned ms);

/*
 * Runs sn-<app> with argv (argv[0] included, NULL-terminated) to completion, at most 20 s:
 * its exit code, 128 + the signal that ended it, or -1 when it had to be killed.
 */
int su_run_to_exit(const char *app, char *const argv[], bool quiet);

/*
 * Runs sn-<app> with `args` (one string, split by the shell) to completion: its exit code (-1
 * when it did not exit normally), with what it printed (stdout and stderr) in out, cut to
 * cap - 1 bytes and NUL-terminated.
 */
int su_run_output(const char *app, const char *args, char *out, size_t cap);

/*
 * Starts sn-<app> with `args` (NULL-terminated; SU_PORT and SU_PORT2 stand for free ports,
 * which end in s->port and s->port2) and waits until it accepts connections on s->port (up to
 * 20 s, 60 s under sanitizers), trying other ports if the first were taken meanwhile.
 * Asserts success.
 */
void su_start_args(struct su_server *s, const char *app, const char *const *args);

/* su_start_args with --smp 2 --unpinned --port SU_PORT [extra...]; extra may be NULL. */
void su_start(struct su_server *s, const char *app, const char *const *extra);

/* SIGTERM, then waits up to ms; *took_ms (if not NULL) gets the time to exit. */
int su_stop(struct su_server *s, unsigned ms, uint64_t *took_ms);

/*
 * Stops the server and asserts a clean exit 0 within 20 s (60 s under sanitizers; under ASan
 * exit 0 also means no leak report).
 */
void su_stop_clean(struct su_server *s);

/* A /proc/<pid>/status field in kB (VmRSS, VmHWM, ...), or -1. */
long su_status_kb(pid_t pid, const char *field);
long su_rss_kb(pid_t pid);

/* Abortive close: the peer sees a reset, nothing lingers in TIME_WAIT. */
void su_close_rst(int fd);

/*
 * Reads into buf (NUL-terminated, at most cap-1 bytes kept) until `until` occurs in what was
 * read (NULL: only EOF ends it), the peer ends the connection (*eof set), or ms pass.
 * Returns the bytes kept.
 */
size_t su_read_until(int fd, char *buf, size_t cap, const char *until, unsigned ms, bool *eof);

/* Waits up to ms for the peer to end the connection, discarding what arrives: true if it did. */
bool su_wait_eof(int fd, unsigned ms);

/* Sends without blocking longer than ms in total; returns the bytes the kernel took. */
size_t su_send_some(int fd, const void *p, size_t len, unsigned ms);

/* One request/answer on a new connection: true when `expect` arrives within ms. */
bool su_exchange(uint16_t port, const char *req, size_t len, const char *expect, unsigned ms);

/*
 * Sends `n` copies of `unit`, reading nothing for the first 500 ms, then goes on sending while
 * reading; returns how many times `term` came back (up to `want`) before the server closed or
 * idle_ms passed without progress (occurrences split across reads count too). The socket's
 * flags are as before on return.
 */
size_t su_pipeline_ahead(int fd, const char *unit, size_t unit_len, size_t n, const char *term,
                         size_t want, unsigned idle_ms);

/* Asserts that the server still runs and answers a normal request on a fresh connection. */
void su_assert_serving(const struct su_server *s, const char *after);

#endif
