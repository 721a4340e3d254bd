/*
 * The stall detector (reactor/stall.h): a task that runs on the CPU past the threshold is a
 * stall, reported with the name of the function that ran; a core that was not running for
 * that long (stopped by SIGSTOP, or blocked in the kernel) is a preemption, counted and not
 * reported. Thresholds are CPU time, so the spinning task spins until its thread's CPU clock
 * has advanced, however loaded the machine is.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <sn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "reactor/stall.h"
#include "reactor_util.h"

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Runs `ms` of this thread's CPU time. Not inlined: the report must name it. */
static __attribute__((noinline)) void spin_cpu_for_test(unsigned ms)
{
    uint64_t until = clock_ns(CLOCK_THREAD_CPUTIME_ID) + (uint64_t)ms * 1000000u;
    while (clock_ns(CLOCK_THREAD_CPUTIME_ID) < until)
        ;
}

static struct sn_future *main_spin(void *arg)
{
    (void)arg;
    spin_cpu_for_test(50);
    return SN_SUCCESS;
}

/* Runs sn_run with stderr going to a temporary file; returns what was written (malloc'd). */
static char *run_capturing_stderr(const struct sn_config *cfg, sn_main_fn fn, int *rc)
{
    FILE *tmp = tmpfile();
    cr_assert_not_null(tmp);
    fflush(stderr);
    int saved = dup(2);
    cr_assert_geq(saved, 0);
    dup2(fileno(tmp), 2);
    *rc = sn_run(cfg, fn, NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fseek(tmp, 0, SEEK_END);
    long len = ftell(tmp);
    cr_assert_geq(len, 0);
    rewind(tmp);
    char *text = calloc(1, (size_t)len + 1);
    cr_assert_not_null(text);
    cr_assert_eq(fread(text, 1, (size_t)len, tmp), (size_t)len);
    fclose(tmp);
    fprintf(stderr, "%s", text); /* still visible in the test's output */
    return text;
}

/* Runs fn on one core with a 20 ms stall threshold: what it printed, and core 0's metrics. */
static char *run_one_core(sn_main_fn fn, struct sn_core_metrics *m)
{
    struct sn_config cfg = test_config(1);
    cfg.stall_ms = 20;
    int rc;
    char *out = run_capturing_stderr(&cfg, fn, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_eq(sn_metrics_core(0, m), 0);
    return out;
}

Test(stall, a_spinning_task_is_reported_with_its_function, .timeout = 120)
{
    struct sn_core_metrics m;
    char *out = run_one_core(main_spin, &m);
    cr_expect_eq(m.stalls, 1, "one phase spun 50 ms of CPU: %lu stalls", (unsigned long)m.stalls);
    cr_expect_geq(m.stall_max_ns, 20000000, "stall_max_ns %lu", (unsigned long)m.stall_max_ns);
    cr_expect_not_null(strstr(out, "libsn: core 0 stalled: ran "), "no report in: %s", out);
    cr_expect_not_null(strstr(out, "(tasks)"), "the phase is not named in: %s", out);
    cr_expect_not_null(strstr(out, "spin_cpu_for_test+0x"), "the function is not named in: %s",
                       out);
    free(out);
}

/* The same spin inside a fiber: the timer's signal lands on the fiber's own stack, and the
 * backtrace must stop at the fiber's first frame and still name the function. */
static int fiber_spin(void *arg, uint64_t *value)
{
    (void)arg;
    (void)value;
    spin_cpu_for_test(50);
    return 0;
}

static struct sn_future *main_spin_in_fiber(void *arg)
{
    (void)arg;
    return sn_fiber_spawn(fiber_spin, NULL, NULL);
}

Test(stall, a_spinning_fiber_is_reported_with_its_function, .timeout = 120)
{
    struct sn_core_metrics m;
    char *out = run_one_core(main_spin_in_fiber, &m);
    cr_expect_eq(m.stalls, 1, "%lu stalls", (unsigned long)m.stalls);
    cr_expect_not_null(strstr(out, "spin_cpu_for_test+0x"), "the function is not named in: %s",
                       out);
    cr_expect_not_null(strstr(out, "fiber_spin+0x"), "the fiber is not named in: %s", out);
    free(out);
}

/* ---- a core that is not running is not stalled ------------------------------------------- */

struct handshake {
    _Atomic int ready; /* the child's task is running */
    _Atomic int go;    /* the parent continued it: the task may end */
    uint64_t stalls, preemptions;
};
static struct handshake *hs;

static struct sn_future *main_wait_for_parent(void *arg)
{
    (void)arg;
    uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + 30ull * 1000000000u;
    atomic_store(&hs->ready, 1);
    /* Spins (on the CPU) until the parent has stopped and continued this process. */
    while (!atomic_load(&hs->go) && clock_ns(CLOCK_MONOTONIC) < deadline)
        ;
    return SN_SUCCESS;
}

static void child_run(int err_fd)
{
    dup2(err_fd, 2); /* the parent reads what the core printed */
    struct sn_config cfg = test_config(1);
    cfg.stall_ms = 50;
    int rc = sn_run(&cfg, main_wait_for_parent, NULL);
    struct sn_core_metrics m;
    if (rc != 0 || sn_metrics_core(0, &m) != 0)
        _exit(2);
    hs->stalls = m.stalls;
    hs->preemptions = m.preemptions;
    _exit(atomic_load(&hs->go) ? 0 : 3);
}

static void wait_flag(_Atomic int *flag)
{
    uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + 30ull * 1000000000u;
    while (!atomic_load(flag) && clock_ns(CLOCK_MONOTONIC) < deadline)
        usleep(100);
    cr_assert(atomic_load(flag), "the child's task never started");
}

Test(stall, a_stopped_core_is_a_preemption_not_a_stall, .timeout = 120)
{
    hs = mmap(NULL, sizeof *hs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(hs, MAP_FAILED);
    memset(hs, 0, sizeof *hs);
    FILE *err = tmpfile();
    cr_assert_not_null(err);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        child_run(fileno(err));
    wait_flag(&hs->ready);
    cr_assert_eq(kill(pid, SIGSTOP), 0);
    int status;
    cr_assert_eq(waitpid(pid, &status, WUNTRACED), pid);
    cr_assert(WIFSTOPPED(status));
    /* The stop under test: 100 ms, twice the threshold, during which the core does not run
     * (this sleep is the length of the stop, not a synchronisation: the child is stopped). */
    struct timespec stop = {0, 100000000};
    nanosleep(&stop, NULL);
    cr_assert_eq(kill(pid, SIGCONT), 0);
    atomic_store(&hs->go, 1);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    cr_expect_eq(hs->stalls, 0, "a stopped core was reported as stalled");
    cr_expect_geq(hs->preemptions, 1, "the stop was not counted as a preemption");
    char text[4096] = "";
    rewind(err);
    text[fread(text, 1, sizeof text - 1, err)] = '\0';
    fclose(err);
    cr_expect_null(strstr(text, "stalled"), "the child reported: %s", text);
    munmap(hs, sizeof *hs);
}

static struct sn_future *main_block(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 80000000}; /* blocked in the kernel, not running */
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
    return SN_SUCCESS;
}

Test(stall, a_blocked_core_is_a_preemption_not_a_stall, .timeout = 120)
{
    struct sn_core_metrics m;
    char *out = run_one_core(main_block, &m);
    cr_expect_eq(m.stalls, 0);
    cr_expect_geq(m.preemptions, 1);
    cr_expect_null(strstr(out, "stalled"), "reported: %s", out);
    free(out);
}

/* Without the CPU-time timer: the same verdicts from the thread's CPU clock, no backtrace. */
Test(stall, fallback_clock_tells_a_stall_from_a_block, .timeout = 120)
{
    setenv("SN_STALL_FALLBACK", "1", 1);
    struct sn_config cfg = test_config(1);
    cfg.stall_ms = 20;
    int rc;
    char *out = run_capturing_stderr(&cfg, main_spin, &rc);
    cr_assert_eq(rc, 0);
    struct sn_core_metrics m;
    cr_assert_eq(sn_metrics_core(0, &m), 0);
    cr_expect_eq(m.stalls, 1);
    cr_expect_not_null(strstr(out, "libsn: core 0 stalled: ran "), "no report in: %s", out);
    cr_expect_null(strstr(out, "#0"), "a backtrace without the timer: %s", out);
    free(out);
    cr_assert_eq(sn_run(&cfg, main_block, NULL), 0);
    cr_assert_eq(sn_metrics_core(0, &m), 0);
    cr_expect_eq(m.stalls, 0);
    cr_expect_geq(m.preemptions, 1);
    unsetenv("SN_STALL_FALLBACK");
}

Test(stall, detector_off_counts_nothing, .timeout = 60)
{
    struct sn_config cfg = test_config(1);
    cfg.stall_ms = 0;
    cr_assert_eq(sn_run(&cfg, main_spin, NULL), 0);
    struct sn_core_metrics m;
    cr_assert_eq(sn_metrics_core(0, &m), 0);
    cr_expect_eq(m.stalls + m.preemptions, 0);
}

/* ---- names for code addresses ------------------------------------------------------------- */

Test(stall, symbolize_names_static_and_library_functions)
{
    char buf[256];
    sn__symbolize((const char *)(uintptr_t)spin_cpu_for_test + 3, buf, sizeof buf);
    cr_expect_not_null(strstr(buf, "spin_cpu_for_test+0x3 (test_stall"), "%s", buf);
    sn__symbolize((const void *)(uintptr_t)qsort, buf, sizeof buf);
    cr_expect_not_null(strstr(buf, "qsort+0x0"), "%s", buf);
    sn__symbolize(NULL, buf, sizeof buf);
    cr_expect_not_null(strstr(buf, "0x0"), "%s", buf);
}
