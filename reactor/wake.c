/*
 * Waking a core that sleeps in io_uring: MSG_RING from a reactor's own ring, or an eventfd
 * whose read stays armed on the target's ring. See reactor/wake.h for the protocol.
 */
#include "reactor/wake.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

_Static_assert(sizeof(void *) == 8, "wake tags pack a pointer into 56 bits of user_data");

static bool env_true(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

int sn__waker_init(struct sn__waker *w, const struct sn__uring *u, bool force_eventfd)
{
    memset(w, 0, sizeof *w);
    atomic_init(&w->sleeping, 0);
    /* Non-blocking, so io_uring waits for it with its internal poll instead of parking an
     * io-wq worker thread in a blocking read. */
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0)
        return -errno;
    w->ring_fd = u->fd;
    w->msg_ring =
        (u->features & SN__URING_MSG_RING) && !force_eventfd && !env_true("SN_WAKE_EVENTFD");
    return 0;
}

void sn__waker_destroy(struct sn__waker *w)
{
    if (w->efd >= 0)
        close(w->efd);
    w->efd = -1;
}

/* An SQE from `u`, submitting once to make room if the SQ is full. */
static struct io_uring_sqe *get_sqe(struct sn__uring *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe && io_uring_submit(&u->ring) >= 0)
        sqe = io_uring_get_sqe(&u->ring);
    return sqe;
}

int sn__waker_arm(struct sn__waker *w, struct sn__uring *u)
{
    if (w->efd_armed)
        return 0;
    struct io_uring_sqe *sqe = get_sqe(u);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_read(sqe, w->efd, &w->efd_buf, sizeof w->efd_buf, 0);
    io_uring_sqe_set_data64(sqe, SN__UD_WAKE_EVENTFD);
    w->efd_armed = true;
    return 0;
}

int sn__wake_from_thread(struct sn__waker *target)
{
    uint64_t one = 1;
    for (;;) {
        if (write(target->efd, &one, sizeof one) == (ssize_t)sizeof one)
            return 0;
        /* EAGAIN means the counter is near overflow: a wake-up is already pending. */
        if (errno == EAGAIN)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

int sn__wake_from_reactor(struct sn__uring *src, struct sn__waker *target)
{
    if (!target->msg_ring || !(src->features & SN__URING_MSG_RING))
        return sn__wake_from_thread(target);
    struct io_uring_sqe *sqe = get_sqe(src);
    if (!sqe)
        return sn__wake_from_thread(target);
    io_uring_prep_msg_ring(sqe, target->ring_fd, 0, SN__UD_WAKE_MSG, 0);
    /* The sender hears back only on failure (then it redoes the wake by eventfd). */
    io_uring_sqe_set_data64(sqe, SN__UD_WAKE_SENT_TAG | (uint64_t)(uintptr_t)target);
    if (src->features & SN__URING_CQE_SKIP)
        io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
    return 0;
}

bool sn__waker_handle_cqe(struct sn__waker *self, struct sn__uring *u,
                          const struct io_uring_cqe *cqe)
{
    uint64_t ud = cqe->user_data;

    if (ud == SN__UD_WAKE_MSG)
        return true;
    if (ud == SN__UD_WAKE_EVENTFD) {
        /* The read consumed the counter (or failed, e.g. -ECANCELED at exit); re-arm so the
         * next eventfd write wakes us again. */
        self->efd_armed = false;
        if (cqe->res != -ECANCELED)
            sn__waker_arm(self, u);
        return true;
    }
    if ((ud >> SN__UD_RESERVED_SHIFT) == (SN__UD_WAKE_SENT_TAG >> SN__UD_RESERVED_SHIFT)) {
        if (cqe->res < 0) {
            struct sn__waker *target =
                (struct sn__waker *)(uintptr_t)(ud & ((1ull << SN__UD_RESERVED_SHIFT) - 1));
            sn__wake_from_thread(target);
        }
        return true;
    }
    return false;
}
