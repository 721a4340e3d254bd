/*
 * Tests for reactor/signals.[ch]: SIGTERM/SIGINT sent to the process arrive as a callback
 * through the signalfd read armed on a ring, never as an asynchronous signal.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reactor/signals.h"

struct got {
    int count;
    int last;
};

static void on_signal(void *arg, int signo)
{
    struct got *g = arg;
    g->count++;
    g->last = signo;
}

/* Waits (bounded) for one CQE and hands it to the signals module. */
static bool wait_signal_cqe(struct sn__signals *s, struct sn__uring *u)
{
    struct __kernel_timespec ts = {.tv_sec = 10};
    struct io_uring_cqe *cqe;
    if (io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL) < 0)
        return false;
    bool mine = sn__signals_handle_cqe(s, u, cqe);
    io_uring_cqe_seen(&u->ring, cqe);
    return mine;
}

static void *blocked_child(void *arg)
{
    sigset_t *mask = arg;
    pthread_sigmask(SIG_SETMASK, NULL, mask);
    return NULL;
}

Test(signals, mask_is_inherited)
{
    sigset_t old, child;
    pthread_t th;
    cr_assert_eq(sn__signals_block(&old), 0);
    cr_assert_eq(pthread_create(&th, NULL, blocked_child, &child), 0);
    pthread_join(th, NULL);
    sn__signals_restore(&old);
    cr_assert(sigismember(&child, SIGINT));
    cr_assert(sigismember(&child, SIGTERM));
}

/*
 * The body runs in a forked child, whose only thread is the one that blocks the signals:
 * the test runner has helper threads of its own that would take a process-directed signal
 * asynchronously (and die of it). Returns 0, or the number of the step that failed.
 */
static int signal_round_trip(void)
{
    sigset_t old, pending;
    struct sn__signals s;
    struct sn__uring u;
    struct got g = {0};

    if (sn__signals_block(&old) < 0)
        return 1;
    if (sn__uring_init(&u, 8, 0) < 0 || sn__signals_open(&s, on_signal, &g) < 0)
        return 2;
    if (sn__signals_arm(&s, &u) < 0 || sn__signals_arm(&s, &u) < 0)
        return 3;
    if (sn__uring_submit_and_poll(&u) != 1) /* armed once only */
        return 4;
    if (kill(getpid(), SIGTERM) < 0 || !wait_signal_cqe(&s, &u))
        return 5;
    if (g.count != 1 || g.last != SIGTERM || !s.armed)
        return 6;
    if (kill(getpid(), SIGINT) < 0 || !wait_signal_cqe(&s, &u))
        return 7;
    if (g.count != 2 || g.last != SIGINT)
        return 8;
    sn__uring_exit(&u);
    sn__signals_close(&s);
    sigpending(&pending);
    if (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT))
        return 9;
    sn__signals_restore(&old);
    return 0;
}

Test(signals, sigterm_and_sigint_reach_the_callback, .timeout = 30)
{
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        _exit(signal_round_trip());
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "child died of signal %d", WTERMSIG(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "child failed at step %d", WEXITSTATUS(status));
}

Test(signals, other_cqes_are_not_ours)
{
    struct sn__signals s;
    struct sn__uring u;
    struct got g = {0};
    cr_assert_eq(sn__uring_init(&u, 8, 0), 0);
    cr_assert_eq(sn__signals_open(&s, on_signal, &g), 0);
    struct io_uring_cqe cqe = {.user_data = 77};
    cr_assert_not(sn__signals_handle_cqe(&s, &u, &cqe));
    cqe = (struct io_uring_cqe){.user_data = SN__UD_SIGNAL, .res = -ECANCELED};
    cr_assert(sn__signals_handle_cqe(&s, &u, &cqe));
    cr_assert_eq(g.count, 0, "a cancelled read calls nothing");
    cr_assert_not(s.armed, "and is not re-armed");
    sn__uring_exit(&u);
    sn__signals_close(&s);
}
