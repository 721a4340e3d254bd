/*
 * The stall detector: CPU-time checkpoints, the timer's signal handler and the verdicts. See
 * reactor/stall.h.
 */
#include "reactor/stall.h"

#include "reactor/core.h"

#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define REPORT_EVERY_NS 1000000000ull
/* After expiring, the timer reloads with this, so the CPU time can still be read. */
#define FAR_NS         (3600ull * 1000000000ull)
#define PRINTED_FRAMES 16

static int stall_signal(void)
{
    return SIGRTMIN + 1;
}

static struct timespec ns_ts(uint64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000u),
                             .tv_nsec = (long)(ns % 1000000000u)};
}

static uint64_t ts_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
        return 0;
    return ts_ns(&ts);
}

/* The interrupted instruction from the signal's context, where the platform is known. */
static void *interrupted_pc(void *uc)
{
#if defined(__x86_64__)
    return (void *)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (void *)((ucontext_t *)uc)->uc_mcontext.pc;
#else
    (void)uc;
    return NULL;
#endif
}

/*
 * The timer expired: the thread ran the threshold since the last checkpoint. Async-signal
 * context on the core's own thread: only records (backtrace() was warmed up by install, so
 * it neither loads libgcc nor allocates).
 */
static void on_expiry(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    int saved = errno;
    struct sn__stall *s = si->si_value.sival_ptr;
    if (s && si->si_code == SI_TIMER && !s->fired) {
        s->pc = interrupted_pc(uc);
        s->nframes = backtrace(s->frames, SN__STALL_FRAMES);
        s->fired = 1;
    }
    errno = saved;
}

int sn__stall_install(struct sigaction *old)
{
    void *warm[2];
    (void)backtrace(warm, 2); /* loads the unwinder now, not in the handler */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_expiry;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    return sigaction(stall_signal(), &sa, old) < 0 ? -errno : 0;
}

void sn__stall_uninstall(const struct sigaction *old)
{
    sigaction(stall_signal(), old, NULL);
}

static bool timer_open(struct sn__stall *s)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, stall_signal());
    if (pthread_sigmask(SIG_UNBLOCK, &set, NULL) != 0)
        return false;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = stall_signal();
    ev.sigev_value.sival_ptr = s;
    ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    return timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &s->timer) == 0;
}

void sn__stall_start(struct sn__stall *s, uint64_t ns, bool signal_ok)
{
    memset(s, 0, sizeof *s);
    s->ns = ns;
    if (!ns)
        return;
    const char *force = getenv("SN_STALL_FALLBACK"); /* testing: the CPU clock instead */
    bool fallback = force && *force && strcmp(force, "0") != 0;
    s->timer_ok = signal_ok && !fallback && timer_open(s);
    sn__stall_checkpoint(s, sn__coarse_ns());
}

void sn__stall_stop(struct sn__stall *s)
{
    if (s->timer_ok)
        timer_delete(s->timer);
    s->timer_ok = false;
    s->ns = 0;
}

void sn__stall_checkpoint(struct sn__stall *s, uint64_t now)
{
    s->ck_coarse = now;
    if (!s->timer_ok) {
        s->ck_cpu = thread_cpu_ns();
        return;
    }
    struct itimerspec its = {.it_value = ns_ts(s->ns), .it_interval = ns_ts(FAR_NS)};
    /* A signal of the previous arming that is still on its way would be taken for this one:
     * it is marked fired first, and cleared only once the new arming is in place. */
    s->fired = 1;
    atomic_signal_fence(memory_order_seq_cst);
    timer_settime(s->timer, 0, &its, NULL);
    atomic_signal_fence(memory_order_seq_cst);
    s->fired = 0;
}

/* CPU time the thread ran since the last checkpoint. */
static uint64_t cpu_since_checkpoint(const struct sn__stall *s)
{
    if (!s->timer_ok)
        return thread_cpu_ns() - s->ck_cpu;
    struct itimerspec cur;
    sig_atomic_t fired;
    do { /* an expiry between the two reads would mix the phases */
        fired = s->fired;
        atomic_signal_fence(memory_order_seq_cst);
        if (timer_gettime(s->timer, &cur) < 0)
            return 0;
        atomic_signal_fence(memory_order_seq_cst);
    } while (fired != s->fired);
    uint64_t left = ts_ns(&cur.it_value);
    if (fired)
        return s->ns + (left < FAR_NS ? FAR_NS - left : 0);
    return left < s->ns ? s->ns - left : 0;
}

/* Appends the report's backtrace lines to buf[*used..len). */
static void append_frames(const struct sn__stall *s, char *buf, size_t len, size_t *used)
{
    int n = s->nframes, first = n > 2 ? 2 : 0; /* the handler and the signal trampoline */
    for (int i = 0; i < n && i < 4; i++)
        if (s->pc && s->frames[i] == s->pc) {
            first = i;
            break;
        }
    for (int i = first, k = 0; i < n && k < PRINTED_FRAMES && *used < len; i++, k++) {
        char sym[256];
        int w = snprintf(buf + *used, len - *used, "libsn:   #%d %s\n", k,
                         sn__symbolize(s->frames[i], sym, sizeof sym));
        *used += w > 0 ? (size_t)w : 0;
    }
}

static void report(struct sn__core *c, uint64_t cpu, uint64_t wall, const char *what)
{
    struct sn__stall *s = &c->stall;
    char buf[4096];
    size_t used = 0;
    int w =
        snprintf(buf, sizeof buf, "libsn: core %u stalled: ran %.1f ms of CPU in %.1f ms (%s)%s\n",
                 c->id, cpu / 1e6, wall / 1e6, what, s->fired && s->nframes > 0 ? ", in:" : "");
    used = w > 0 ? (size_t)w : 0;
    if (s->fired && s->nframes > 0)
        append_frames(s, buf, sizeof buf, &used);
    if (used > sizeof buf - 1)
        used = sizeof buf - 1;
    fwrite(buf, 1, used, stderr); /* one write: lines of other cores do not interleave */
}

void sn__stall_verdict(struct sn__core *c, uint64_t wall, uint64_t now, const char *what)
{
    struct sn__stall *s = &c->stall;
    uint64_t cpu = cpu_since_checkpoint(s);
    if (cpu < s->ns) {
        sn__count(&c->c.preemptions, 1);
    } else {
        sn__count(&c->c.stalls, 1);
        if (cpu > atomic_load_explicit(&c->c.stall_max_ns, memory_order_relaxed))
            atomic_store_explicit(&c->c.stall_max_ns, cpu, memory_order_relaxed);
        if (!s->last_report_ns || now - s->last_report_ns >= REPORT_EVERY_NS) {
            s->last_report_ns = now;
            report(c, cpu, wall, what);
        }
    }
    sn__stall_checkpoint(s, now);
}
