/*
 * callgrind_calls: bench_submit's calls phase alone (sn_submit_to 0 -> 1, 1024 in flight) for
 * counting instructions per call under valgrind --tool=callgrind (bench/callgrind_calls.sh
 * builds it against a tree's libsn.a, runs it and prints Ir per call by function). Counts
 * are zeroed when the phase starts and dumped when the last reply came; then the process
 * _exits, because valgrind holds its lock while a thread blocks in io_uring_enter, so a
 * reactor cannot shut down under it (nor sleep: the cores poll for 10 s, and the script
 * sends SIGUSR2 now and then to end a sleep that happens anyway).
 * Usage: callgrind_calls [calls]; NO_SAMPLING=1 turns queue-delay sampling off.
 */
#include <sn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <signal.h>
#include <string.h>
#include <valgrind/callgrind.h>

#define WINDOW 1024
static long n_calls, issued, done;
static struct sn_promise *phase;

static struct sn_future *echo(void *arg)
{
    (void)arg;
    return SN_SUCCESS;
}

static void call_done(void *arg, int err, uint64_t v)
{
    (void)arg, (void)err, (void)v;
    if (++done == n_calls) {
        CALLGRIND_DUMP_STATS;
        printf("done %ld\n", done);
        fflush(stdout);
        _exit(0); /* valgrind holds its lock in io_uring_enter: no shutdown under it */
    } else if (issued < n_calls) {
        issued++;
        sn_done(sn_submit_to(1, echo, NULL), call_done, NULL);
    }
}

static struct sn_future *calls_main(void *arg)
{
    (void)arg;
    struct sn_future *f;
    phase = sn_promise_new(&f);
    CALLGRIND_ZERO_STATS;
    for (; issued < WINDOW && issued < n_calls; issued++)
        sn_done(sn_submit_to(1, echo, NULL), call_done, NULL);
    return f;
}

static void kick(int sig)
{
    (void)sig;
}

int main(int argc, char **argv)
{
    n_calls = argc > 1 ? atol(argv[1]) : 200000;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = kick;
    sigaction(SIGUSR2, &sa, NULL); /* an outside kick ends a sleep in io_uring_enter */
    struct sn_config cfg;
    sn_config_init(&cfg);
    cfg.smp = 2;
    cfg.stall_ms = 0;
    cfg.idle_poll_us = cfg.io_poll_us = 10000000;
#ifdef SN_CONFIG_NO_DELAY_SAMPLE
    if (getenv("NO_SAMPLING"))
        cfg.delay_sample_every = SN_CONFIG_NO_DELAY_SAMPLE;
#endif
    int rc = sn_run(&cfg, calls_main, NULL);
    printf("rc %d done %ld\n", rc, done);
    return rc != 0;
}
