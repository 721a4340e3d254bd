/*
 * Runner for the TSan build's Criterion stand-in (see tests/shim/criterion/criterion.h).
 * Runs every registered test in registration order in this one process, with a per-test
 * alarm for .timeout, and prints a Criterion-style synthesis line that tests/run.sh reads.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static struct sn_shim_test *tests_head, **tests_tail = &tests_head;
static struct sn_shim_suite *suites;
static jmp_buf test_exit;
static atomic_int current_failed; /* an expectation may fail on another thread */
static int current_skipped;
static pthread_t main_thread;

/*
 * A fatal assertion (or a skip) ends the test by longjmp'ing back into run_body, which is
 * only possible on the thread that called it. On any other thread (a reactor core, a client
 * thread) that would jump across stacks, so it ends the whole run instead, saying where.
 * Criterion proper runs each test in a process of its own, where this is a crash too.
 */
static void leave_test(const char *file, int line, const char *what)
{
    if (pthread_equal(pthread_self(), main_thread))
        longjmp(test_exit, 1);
    if (file)
        fprintf(stderr, "[FAIL] %s:%d: ", file, line);
    else
        fputs("[FAIL] ", stderr);
    fprintf(stderr,
            "%s on a thread that is not the test's own: the TSan shim cannot end just this "
            "test from there, so it aborts the run (assert on the test's thread, after "
            "joining, instead)\n",
            what);
    abort();
}

void sn_shim_register(struct sn_shim_test *t)
{
    *tests_tail = t;
    tests_tail = &t->next;
}

void sn_shim_register_suite(struct sn_shim_suite *s)
{
    s->next = suites;
    suites = s;
}

void sn_shim_fail(int fatal, const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "[FAIL] %s:%d: %s", file, line, expr);
    if (fmt[0]) {
        fputs(": ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    atomic_store(&current_failed, 1);
    if (fatal)
        leave_test(file, line, "fatal assertion");
}

void sn_shim_skip(const char *fmt, ...)
{
    (void)fmt;
    current_skipped = 1;
    leave_test(NULL, 0, "cr_skip_test");
}

void sn_shim_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const struct sn_shim_suite *find_suite(const char *name)
{
    for (const struct sn_shim_suite *s = suites; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "[FAIL] test timed out\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(3);
}

/* Runs init and the test body; a fatal assertion longjmps back here. */
static void (*current_init)(void);
static void (*current_fn)(void);

static void run_body(void)
{
    if (setjmp(test_exit) == 0) {
        if (current_init)
            current_init();
        current_fn();
    }
}

/* Returns 1 when the test ran and passed, 0 when it failed, -1 when it was skipped. */
static int run_one(struct sn_shim_test *t)
{
    const struct sn_shim_suite *s = find_suite(t->suite);
    void (*init)(void) = t->init ? t->init : (s ? s->init : NULL);
    void (*fini)(void) = t->fini ? t->fini : (s ? s->fini : NULL);
    double timeout = t->timeout ? t->timeout : (s ? s->timeout : 0);

    if (t->disabled || t->signal || t->exit_code || (s && s->disabled))
        return -1;
    atomic_store(&current_failed, 0);
    current_skipped = 0;
    alarm(timeout > 0 ? (unsigned)(timeout * 4 + 1) : 0); /* TSan is slow: 4x margin */
    current_init = init;
    current_fn = t->fn;
    run_body();
    if (fini)
        fini();
    alarm(0);
    if (current_skipped)
        return -1;
    int failed = atomic_load(&current_failed);
    fprintf(stderr, "[%s] %s::%s\n", failed ? "FAIL" : "PASS", t->suite, t->name);
    return !failed;
}

int main(void)
{
    int tested = 0, passing = 0;

    main_thread = pthread_self();
    signal(SIGALRM, on_alarm);
    for (struct sn_shim_test *t = tests_head; t; t = t->next) {
        int r = run_one(t);
        if (r < 0)
            continue;
        tested++;
        passing += r;
    }
    printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Crashing: 0\n", tested,
           passing, tested - passing);
    return tested == passing ? 0 : 1;
}
