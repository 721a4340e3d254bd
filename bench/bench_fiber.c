/*
 * bench_fiber: fibers against what a C programmer would otherwise use, peers in the same run.
 *
 *   switch      one context switch, two contexts bouncing on one thread: libsn's own
 *               switch (sn__ctx_switch), (peer) boost.context's jump_fcontext, (peer)
 *               swapcontext from glibc; plus a whole sn_fiber_yield between two fibers
 *               (run queue included) for scale, and two variants of our switch that were
 *               not chosen (see alt_switch_ns);
 *   spawn       spawn + run + join of an empty fiber from a fiber on one core, against
 *               (peer) pthread_create + pthread_join of an empty thread;
 *   await rtt   sn_await(sn_submit_to(1, echo)) round trips from a fiber on core 0, against
 *               (peer) the callback form of bench_submit (sn_then chains), both in the same
 *               run, phases interleaved, p50 of each;
 *   idle        100,000 fibers spawned on one core, each waiting for its own promise: resident
 *               memory per fiber (RSS growth / fibers, 64 KiB of stack reserved each).
 * The machine is shared and noisy: everything runs in rounds and each ratio is the median of
 * the per-round ratios.
 *
 * Usage: bench_fiber [-r rounds] [-s switches] [-j spawns] [-p pthreads] [-n rtt_samples]
 *                    [-i idle_fibers]
 */
#include <sn.h>

#include "bench_data.h"
#include "bench_util.h"
#include "core/fiber.h"

#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define MAX_ROUNDS 31
#define PEER_STACK (64 * 1024)

static int n_rounds = 5;
static long n_switch = 10000000;
static long n_spawn = 1000000;
static long n_pthread = 20000;
static int n_rtt = 50000;
static long n_idle = 100000;

static void *peer_stack(void)
{
    void *p = mmap(NULL, PEER_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

/* ---- switch: ours ---------------------------------------------------------------------- */

static void *ours_main, *ours_co;

static void ours_body(void *arg)
{
    (void)arg;
    for (;;)
        sn__ctx_switch(&ours_co, ours_main);
}

static double ours_switch_ns(void *stack)
{
    ours_co = sn__ctx_make((char *)stack + PEER_STACK, ours_body, NULL);
    uint64_t t0 = sn_now_ns();
    for (long i = 0; i < n_switch; i++)
        sn__ctx_switch(&ours_main, ours_co);
    return (double)(sn_now_ns() - t0) / (2.0 * (double)n_switch);
}

/*
 * The two designs not taken, measured the same way (x86-64 only): returning into the other
 * context with `ret` (the return stack buffer then mispredicts every switch), and saving the
 * floating-point control words too (MXCSR, x87 CW: what jump_fcontext does). Both use
 * sn__ctx_make's frame layout (the FP words sit below the saved registers).
 */
#if defined(__x86_64__)
#define ALT_SWITCH(name, save, restore, leave)                                                     \
    __asm__(".text\n.globl " #name "\n.hidden " #name "\n" #name ":\n"                             \
            "pushq %rbp\npushq %rbx\npushq %r12\npushq %r13\npushq %r14\npushq %r15\n" save        \
            "movq %rsp, (%rdi)\nmovq %rsi, %rsp\n" restore                                         \
            "popq %r15\npopq %r14\npopq %r13\npopq %r12\npopq %rbx\npopq %rbp\n" leave);
ALT_SWITCH(alt_switch_ret, "", "", "ret\n")
ALT_SWITCH(alt_switch_fpu, "subq $8, %rsp\nstmxcsr (%rsp)\nfnstcw 4(%rsp)\n",
           "ldmxcsr (%rsp)\nfldcw 4(%rsp)\naddq $8, %rsp\n", "popq %rcx\njmp *%rcx\n")
void alt_switch_ret(void **save, void *to);
void alt_switch_fpu(void **save, void *to);

static void (*alt_switch)(void **, void *);

static void alt_body(void *arg)
{
    (void)arg;
    for (;;)
        alt_switch(&ours_co, ours_main);
}

static double alt_switch_ns(void *stack, void (*sw)(void **, void *), int fpu)
{
    alt_switch = sw;
    uint64_t *sp = sn__ctx_make((char *)stack + PEER_STACK, alt_body, NULL);
    if (fpu) { /* room for the control words below the frame, at their power-on values */
        uint32_t *w = (uint32_t *)(void *)(sp - 1);
        w[0] = 0x1f80;
        w[1] = 0x037f;
        sp--;
    }
    ours_co = sp;
    uint64_t t0 = sn_now_ns();
    for (long i = 0; i < n_switch; i++)
        sw(&ours_main, ours_co);
    return (double)(sn_now_ns() - t0) / (2.0 * (double)n_switch);
}
#endif

/* ---- switch: boost.context (declared here: its header is C++) ---------------------------- */

typedef void *fcontext_t;
typedef struct {
    fcontext_t fctx;
    void *data;
} transfer_t;
transfer_t jump_fcontext(fcontext_t const to, void *vp);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

static void fc_body(transfer_t t)
{
    for (;;)
        t = jump_fcontext(t.fctx, NULL);
}

static double fcontext_switch_ns(void *stack)
{
    fcontext_t c = make_fcontext((char *)stack + PEER_STACK, PEER_STACK, fc_body);
    uint64_t t0 = sn_now_ns();
    for (long i = 0; i < n_switch; i++)
        c = jump_fcontext(c, NULL).fctx;
    return (double)(sn_now_ns() - t0) / (2.0 * (double)n_switch);
}

/* ---- switch: swapcontext ------------------------------------------------------------------ */

static ucontext_t uc_main, uc_co;

static void uc_body(void)
{
    for (;;)
        swapcontext(&uc_co, &uc_main);
}

static double swapcontext_switch_ns(void *stack)
{
    long n = n_switch / 20 > 1000 ? n_switch / 20 : 1000; /* a system call per switch */
    getcontext(&uc_co);
    uc_co.uc_stack.ss_sp = stack;
    uc_co.uc_stack.ss_size = PEER_STACK;
    uc_co.uc_link = NULL;
    makecontext(&uc_co, uc_body, 0);
    uint64_t t0 = sn_now_ns();
    for (long i = 0; i < n; i++)
        swapcontext(&uc_main, &uc_co);
    return (double)(sn_now_ns() - t0) / (2.0 * (double)n);
}

/* ---- fibers on a reactor ------------------------------------------------------------------- */

struct reactor_results {
    double yield_ns, spawn_join_ns;
    uint64_t rtt_cb_p50, rtt_fiber_p50;
    double rss_per_fiber;
    uint64_t maps_growth;
};

static struct reactor_results res;

static int yielder(void *arg, uint64_t *value)
{
    (void)value;
    long n = (long)(uintptr_t)arg;
    for (long i = 0; i < n; i++)
        sn_fiber_yield();
    return 0;
}

static int empty(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    return 0;
}

static int one_core_driver(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    /* Two fibers yielding to each other: each yield is a queue trip and two switches. */
    long ny = n_switch / 10;
    struct sn_future *y[2];
    uint64_t t0 = sn_now_ns();
    y[0] = sn_fiber_spawn(yielder, (void *)(uintptr_t)ny, NULL);
    y[1] = sn_fiber_spawn(yielder, (void *)(uintptr_t)ny, NULL);
    int err = sn_await(sn_when_all(y, 2, NULL), NULL);
    res.yield_ns = (double)(sn_now_ns() - t0) / (2.0 * (double)ny);
    if (err)
        return err;
    t0 = sn_now_ns();
    for (long i = 0; i < n_spawn; i++)
        if ((err = sn_await(sn_fiber_spawn(empty, NULL, NULL), NULL)) < 0)
            return err;
    res.spawn_join_ns = (double)(sn_now_ns() - t0) / (double)n_spawn;
    return 0;
}

/* -- await round trips against the callback form -- */

static struct {
    uint64_t *lat;
    int i, end;
    uint64_t t0;
} cb;

static struct sn_future *echo(void *arg)
{
    return sn_ready((uintptr_t)arg);
}

/* bench_submit's rtt_step: the next call from the continuation of the last. */
static struct sn_future *rtt_step(void *arg, uint64_t v)
{
    (void)arg, (void)v;
    uint64_t t = sn_now_ns();
    if (cb.t0)
        cb.lat[cb.i++] = t - cb.t0;
    if (cb.i == cb.end)
        return NULL;
    cb.t0 = sn_now_ns();
    return sn_then(sn_submit_to(1, echo, NULL), rtt_step, NULL);
}

/* The two forms take turns in blocks, so a slow spell of the machine hits both alike. */
#define RTT_BLOCKS 10

static int rtt_driver(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    uint64_t *lat = calloc((size_t)n_rtt, sizeof *lat);
    cb.lat = calloc((size_t)n_rtt, sizeof *cb.lat);
    if (!lat || !cb.lat)
        return -ENOMEM;
    int err = 0, block = n_rtt / RTT_BLOCKS, n = 0;
    cb.i = 0;
    for (int b = 0; err == 0 && b < RTT_BLOCKS; b++) {
        cb.end = cb.i + block;
        cb.t0 = 0;
        err = sn_await(rtt_step(NULL, 0), NULL);
        for (int i = 0; err == 0 && i < block; i++) {
            uint64_t t0 = sn_now_ns();
            err = sn_await(sn_submit_to(1, echo, NULL), NULL);
            lat[n++] = sn_now_ns() - t0;
        }
    }
    if (err == 0) {
        res.rtt_cb_p50 = bu_quantile_u64(cb.lat, (size_t)cb.i, 0.5);
        res.rtt_fiber_p50 = bu_quantile_u64(lat, (size_t)n, 0.5);
        bench_data_quantiles("bench_fiber", "rtt_fiber", lat, (size_t)n); /* sorted */
    }
    free(lat);
    free(cb.lat);
    return err;
}

/* -- idle fibers -- */

static long rss_pages(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = 0;
    if (f)
        fclose(f);
    return resident;
}

static uint64_t count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    uint64_t n = 0;
    int ch;
    while (f && (ch = fgetc(f)) != EOF)
        n += ch == '\n';
    if (f)
        fclose(f);
    return n;
}

static long idle_waiting;

static int idler(void *arg, uint64_t *value)
{
    idle_waiting++;
    return sn_await(arg, value);
}

static int idle_driver(void *arg, uint64_t *value)
{
    (void)arg, (void)value;
    struct sn_promise **gates = calloc((size_t)n_idle, sizeof *gates);
    struct sn_future **joins = calloc((size_t)n_idle, sizeof *joins);
    if (!gates || !joins)
        return -ENOMEM;
    idle_waiting = 0;
    long rss0 = rss_pages();
    uint64_t maps0 = count_maps();
    for (long i = 0; i < n_idle; i++) {
        struct sn_future *g;
        gates[i] = sn_promise_new(&g);
        joins[i] = sn_fiber_spawn(idler, g, NULL);
    }
    int err = 0;
    while (err == 0 && idle_waiting < n_idle)
        err = sn_fiber_yield();
    long rss1 = rss_pages();
    res.maps_growth = count_maps() - maps0;
    res.rss_per_fiber = (double)(rss1 - rss0) * (double)sysconf(_SC_PAGESIZE) / (double)n_idle;
    for (long i = 0; i < n_idle; i++)
        sn_promise_set(gates[i], 0);
    if (err == 0)
        err = sn_await(sn_when_all(joins, (unsigned)n_idle, NULL), NULL);
    free(gates);
    free(joins);
    return err;
}

static struct sn_future *spawn_main(void *arg)
{
    return sn_fiber_spawn((sn_fiber_fn)arg, NULL, NULL);
}

static int run_on(unsigned ncores, sn_fiber_fn driver)
{
    struct sn_config cfg;
    sn_config_init(&cfg);
    cfg.smp = ncores;
    cfg.stall_ms = 0;
    return sn_run(&cfg, spawn_main, (void *)driver);
}

/* ---- peer: pthreads ------------------------------------------------------------------------ */

static void *thread_empty(void *arg)
{
    return arg;
}

static double pthread_spawn_join_ns(void)
{
    uint64_t t0 = sn_now_ns();
    for (long i = 0; i < n_pthread; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, thread_empty, NULL) != 0)
            return -1;
        pthread_join(t, NULL);
    }
    return (double)(sn_now_ns() - t0) / (double)n_pthread;
}

/* ---- main ---------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "r:s:j:p:n:i:")) != -1) {
        switch (opt) {
        case 'r': n_rounds = atoi(optarg); break;
        case 's': n_switch = atol(optarg); break;
        case 'j': n_spawn = atol(optarg); break;
        case 'p': n_pthread = atol(optarg); break;
        case 'n': n_rtt = atoi(optarg); break;
        case 'i': n_idle = atol(optarg); break;
        default:
            fprintf(stderr, "usage: bench_fiber [-r rounds] [-s switches] [-j spawns] "
                            "[-p pthreads] [-n rtt_samples] [-i idle_fibers]\n");
            return 2;
        }
    }
    if (n_rounds < 1 || n_rounds > MAX_ROUNDS || n_switch < 1000 || n_spawn < 1 || n_pthread < 1 ||
        n_rtt < 100 || n_idle < 1) {
        fprintf(stderr, "bench_fiber: bad parameters\n");
        return 2;
    }
    printf("bench_fiber: %d rounds, %ld switches, %ld spawns, %ld pthreads, %d round trips, "
           "%ld idle fibers\n",
           n_rounds, n_switch, n_spawn, n_pthread, n_rtt, n_idle);
    void *s1 = peer_stack(), *s2 = peer_stack(), *s3 = peer_stack();
    double ours[MAX_ROUNDS], fc[MAX_ROUNDS], uc[MAX_ROUNDS], r_fc[MAX_ROUNDS], r_uc[MAX_ROUNDS],
        yield[MAX_ROUNDS], spawn[MAX_ROUNDS], pth[MAX_ROUNDS], r_rtt[MAX_ROUNDS], cbv[MAX_ROUNDS],
        fbv[MAX_ROUNDS], alt_ret[MAX_ROUNDS] = {0}, alt_fpu[MAX_ROUNDS] = {0};
    for (int r = 0; r < n_rounds; r++) {
        ours[r] = ours_switch_ns(s1);
        fc[r] = fcontext_switch_ns(s2);
        uc[r] = swapcontext_switch_ns(s3);
        r_fc[r] = ours[r] / fc[r];
#if defined(__x86_64__)
        alt_ret[r] = alt_switch_ns(s1, alt_switch_ret, 0);
        alt_fpu[r] = alt_switch_ns(s1, alt_switch_fpu, 1);
#endif
        r_uc[r] = uc[r] / ours[r];
        if (run_on(1, one_core_driver) != 0 || run_on(2, rtt_driver) != 0) {
            fprintf(stderr, "bench_fiber: sn_run failed\n");
            return 1;
        }
        pth[r] = pthread_spawn_join_ns();
        yield[r] = res.yield_ns;
        spawn[r] = res.spawn_join_ns;
        cbv[r] = (double)res.rtt_cb_p50;
        fbv[r] = (double)res.rtt_fiber_p50;
        r_rtt[r] = fbv[r] / cbv[r];
        printf("round %d: switch ours %.2f ns, jump_fcontext %.2f ns (ours/fcontext %.2f), "
               "swapcontext %.1f ns (%.1fx ours) | sn_fiber_yield %.1f ns | spawn+join %.0f ns, "
               "pthread %.0f ns | rtt p50 fiber %lu ns, callback %lu ns (%.3f)\n",
               r, ours[r], fc[r], r_fc[r], uc[r], r_uc[r], yield[r], spawn[r], pth[r],
               (unsigned long)res.rtt_fiber_p50, (unsigned long)res.rtt_cb_p50, r_rtt[r]);
        printf("  designs not taken: switch through ret %.2f ns, saving the FP control words "
               "%.2f ns\n",
               alt_ret[r], alt_fpu[r]);
        fflush(stdout);
    }
    if (run_on(1, idle_driver) != 0) {
        fprintf(stderr, "bench_fiber: idle run failed\n");
        return 1;
    }
    printf("idle: %ld fibers waiting, %.0f bytes resident each (64 KiB stacks reserved), "
           "%lu more mappings\n",
           n_idle, res.rss_per_fiber, (unsigned long)res.maps_growth);
    double m_ours = bu_median(ours, n_rounds), m_fc = bu_median(fc, n_rounds),
           m_uc = bu_median(uc, n_rounds);
    printf("medians: switch ours %.2f ns, jump_fcontext %.2f ns, swapcontext %.1f ns; "
           "ours/fcontext %.2f (goal <= 1.2), swapcontext/ours %.1f (goal >= 10); "
           "spawn+join %.0f ns vs pthread %.0f ns; await rtt fiber/callback %.3f (goal <= 1.1)\n",
           m_ours, m_fc, m_uc, bu_median(r_fc, n_rounds), bu_median(r_uc, n_rounds),
           bu_median(spawn, n_rounds), bu_median(pth, n_rounds), bu_median(r_rtt, n_rounds));
    printf("designs not taken (medians): ret %.2f ns, FP control words saved %.2f ns\n",
           bu_median(alt_ret, n_rounds), bu_median(alt_fpu, n_rounds));
    printf("summary: switch_ns=%.2f fcontext_ns=%.2f swapcontext_ns=%.1f "
           "await_rtt_vs_callback=%.3f spawn_join_ns=%.0f pthread_spawn_join_ns=%.0f "
           "rss_per_fiber=%.0f\n",
           m_ours, m_fc, m_uc, bu_median(r_rtt, n_rounds), bu_median(spawn, n_rounds),
           bu_median(pth, n_rounds), res.rss_per_fiber);
    return 0;
}
