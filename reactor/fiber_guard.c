/*
 * The fiber stack overflow handler: see reactor/fiber_stack.h.
 *
 * A fiber that runs off its stack faults in the guard region below it, with its stack
 * pointer already there: the handler can only run on another stack, so every reactor thread
 * gets an alternate signal stack (sigaltstack) and the handler is installed with SA_ONSTACK.
 * It asks core which fiber the thread is running (plain reads: async-signal-safe), compares
 * the fault address with that fiber's guard region, and either reports and aborts or hands
 * the signal on to the handler that was installed before, so other faults behave as they
 * would without libsn (the default action: the process dies of SIGSEGV).
 */
#include "reactor/fiber_stack.h"

#include <sn/sched.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ALTSTACK_MIN (64u * 1024u)

static struct sigaction previous;
static bool installed;
static size_t guard_bytes; /* read by the handler: set before the handler exists */

/* Appends s to buf at *n (async-signal-safe string building). */
static void put_str(char *buf, size_t cap, size_t *n, const char *s)
{
    while (*s && *n + 1 < cap)
        buf[(*n)++] = *s++;
}

static void put_uint(char *buf, size_t cap, size_t *n, unsigned long long v)
{
    char digits[24];
    int k = 0;
    do {
        digits[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k && *n + 1 < cap)
        buf[(*n)++] = digits[--k];
}

static void report_overflow(const char *name, size_t size)
{
    char msg[160];
    size_t n = 0;
    put_str(msg, sizeof msg, &n, "libsn: fiber ");
    put_str(msg, sizeof msg, &n, name);
    put_str(msg, sizeof msg, &n, " on core ");
    put_uint(msg, sizeof msg, &n, sn_core_id());
    put_str(msg, sizeof msg, &n, " overflowed its ");
    put_uint(msg, sizeof msg, &n, size);
    put_str(msg, sizeof msg, &n, "-byte stack\n");
    ssize_t rc = write(STDERR_FILENO, msg, n);
    (void)rc;
}

/* Hands the fault to the handler installed before libsn's. */
static void pass_on(int sig, siginfo_t *si, void *uc)
{
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, si, uc);
        return;
    }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    /* Default action: returning re-runs the faulting instruction, which now kills us. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    struct sn__stack st;
    size_t asked;
    const char *name;
    if (sn__fiber_current_stack(&st, &asked, &name)) {
        const char *a = si->si_addr;
        if (a < st.lo && (size_t)(st.lo - a) <= guard_bytes) {
            report_overflow(name, asked);
            abort();
        }
    }
    pass_on(sig, si, uc);
}

int sn__fiber_guard_install(void)
{
    if (installed)
        return 0;
    guard_bytes = sn__stack_guard_size();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &previous) < 0)
        return -errno;
    installed = true;
    return 0;
}

void sn__fiber_guard_uninstall(void)
{
    if (!installed)
        return;
    sigaction(SIGSEGV, &previous, NULL);
    installed = false;
}

int sn__altstack_init(struct sn__altstack *a)
{
    memset(a, 0, sizeof *a);
    long min = sysconf(_SC_MINSIGSTKSZ);
    a->size = min > 0 && (size_t)min * 4 > ALTSTACK_MIN ? (size_t)min * 4 : ALTSTACK_MIN;
    a->mem = mmap(NULL, a->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a->mem == MAP_FAILED) {
        a->mem = NULL;
        return -ENOMEM;
    }
    stack_t ss = {.ss_sp = a->mem, .ss_size = a->size, .ss_flags = 0};
    if (sigaltstack(&ss, &a->old) < 0) {
        int err = -errno;
        munmap(a->mem, a->size);
        a->mem = NULL;
        return err;
    }
    a->on = 1;
    return 0;
}

void sn__altstack_exit(struct sn__altstack *a)
{
    if (!a->on)
        return;
    /* Give back what the thread had (ASan, for one, frees its own at thread exit). */
    stack_t old = a->old;
    if (old.ss_flags & SS_DISABLE)
        old = (stack_t){.ss_flags = SS_DISABLE};
    sigaltstack(&old, NULL);
    munmap(a->mem, a->size);
    a->on = 0;
}
