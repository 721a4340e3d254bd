/*
 * SIGINT/SIGTERM through a signalfd read armed on core 0's ring: see reactor/signals.h.
 */
#include "reactor/signals.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

int sn__signals_block(sigset_t *old)
{
    sigset_t set;
    stop_signals(&set);
    return -pthread_sigmask(SIG_BLOCK, &set, old);
}

void sn__signals_restore(const sigset_t *old)
{
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

int sn__signals_open(struct sn__signals *s, sn__signal_fn cb, void *arg)
{
    sigset_t set;

    memset(s, 0, sizeof *s);
    stop_signals(&set);
    /* Non-blocking, so io_uring polls it rather than parking a worker in read(). */
    s->fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (s->fd < 0)
        return -errno;
    s->cb = cb;
    s->arg = arg;
    return 0;
}

int sn__signals_arm(struct sn__signals *s, struct sn__uring *u)
{
    if (s->armed)
        return 0;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe && io_uring_submit(&u->ring) >= 0)
        sqe = io_uring_get_sqe(&u->ring);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_read(sqe, s->fd, &s->info, sizeof s->info, 0);
    io_uring_sqe_set_data64(sqe, SN__UD_SIGNAL);
    s->armed = true;
    return 0;
}

bool sn__signals_handle_cqe(struct sn__signals *s, struct sn__uring *u,
                            const struct io_uring_cqe *cqe)
{
    if (cqe->user_data != SN__UD_SIGNAL)
        return false;
    s->armed = false;
    if (cqe->res == (int)sizeof s->info && s->cb)
        s->cb(s->arg, (int)s->info.ssi_signo);
    if (cqe->res != -ECANCELED)
        sn__signals_arm(s, u);
    return true;
}

void sn__signals_close(struct sn__signals *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}
