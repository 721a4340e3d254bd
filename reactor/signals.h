/*
 * Internal: SIGINT/SIGTERM delivered through the reactor instead of an async handler.
 *
 * Order at start-up (sn_run):
 *   1. sn__signals_block(&old) on the thread that will create the reactor threads, BEFORE
 *      creating any: new threads inherit the mask, so no reactor thread ever takes the
 *      signal asynchronously, and a process-directed SIGINT/SIGTERM stays pending;
 *   2. sn__signals_open(&s, cb, arg) (any thread);
 *   3. on core 0, as the ring's owner: sn__signals_arm(&s, ring) before the first sleep;
 *      the loop passes each CQE to sn__signals_handle_cqe, which calls cb on core 0 and
 *      re-arms the read.
 * At shutdown: after the ring is exited, sn__signals_close(&s), then
 * sn__signals_restore(&old) on the thread that blocked. A SIGINT/SIGTERM that arrives after
 * close stays pending until restore, which then applies its default action (the process
 * ends), the same as if it had arrived with no reactor running.
 *
 * Signals are read from the process-wide pending set, so send them to the process (kill(),
 * the shell), not to one thread with pthread_kill/raise().
 */
#ifndef SN_REACTOR_SIGNALS_H
#define SN_REACTOR_SIGNALS_H

#include <signal.h>
#include <stdbool.h>
#include <sys/signalfd.h>

#include "reactor/uring.h"

typedef void (*sn__signal_fn)(void *arg, int signo);

struct sn__signals {
    int fd; /* signalfd for SIGINT and SIGTERM, non-blocking */
    sn__signal_fn cb;
    void *arg;
    bool armed;
    struct signalfd_siginfo info; /* the armed read's buffer: must outlive the ring */
};

/*
 * Blocks SIGINT and SIGTERM in the calling thread, saving its previous mask in *old.
 * Returns 0 or a negative errno.
 */
int sn__signals_block(sigset_t *old);

/* Restores the mask saved by sn__signals_block (calling thread). */
void sn__signals_restore(const sigset_t *old);

/*
 * Creates the signalfd (SIGINT, SIGTERM). `cb(arg, signo)` will run on the thread that
 * handles the CQE (core 0). Returns 0 or a negative errno; on failure cb is never called.
 */
int sn__signals_open(struct sn__signals *s, sn__signal_fn cb, void *arg);

/*
 * Owner of `u` only: queues the signalfd read (user_data SN__UD_SIGNAL) unless it is already
 * armed; the caller submits. Returns 0 or -EBUSY when the SQ is full even after a submit.
 */
int sn__signals_arm(struct sn__signals *s, struct sn__uring *u);

/*
 * Owner of `u` only: if `cqe` is the signalfd read's, calls cb with the signal number (when
 * the read succeeded), re-arms the read, and returns true; else returns false. Does not
 * advance the CQ.
 */
bool sn__signals_handle_cqe(struct sn__signals *s, struct sn__uring *u,
                            const struct io_uring_cqe *cqe);

/* Closes the signalfd. Call after the ring that had the read armed is exited. */
void sn__signals_close(struct sn__signals *s);

#endif
