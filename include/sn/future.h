/*
 * Futures: a one-shot result (`err`, 0 or a negative errno, plus a 64-bit value that may
 * carry a pointer) with at most one consumer. A future lives on the core that created it and
 * is touched only by that core; it comes from the core's pool, so making one costs no malloc.
 *
 * Ownership: whoever holds a `struct sn_future *` owns it and must hand it to exactly one
 * consumer: sn_then, sn_then_wrapped, sn_done, sn_ignore, sn_when_all, or return it from a
 * continuation or a cross-core function. After that the pointer is no longer the caller's.
 * A `struct sn_promise *` is the producer side: it must be resolved (sn_promise_set) or
 * failed (sn_promise_fail) exactly once, after which it is gone.
 *
 * Continuations run on the future's core. When the result is already there they run at once,
 * inline (the ready-future fast path), as long as the inline nesting stays under
 * SN_FUTURE_MAX_DEPTH; deeper chains go through the run queue, so recursion stays bounded.
 *
 * Errors propagate: sn_then skips its function when the input failed and passes the error
 * on; sn_then_wrapped and sn_done always see the error.
 *
 * NULL: a function that returns a future never returns NULL. SN_SUCCESS, a null future
 * pointer, means "succeeded with value 0": a continuation or a remote function returns it
 * when it has nothing to wait for, and every function here that takes a future accepts it
 * as such. Called on a thread that is not a reactor core, every function here prints
 * "libsn: <function> called off a reactor core" and aborts (a contract violation, like a
 * failed assert); a future or promise used on a core other than its own fails an assert.
 */
#ifndef SN_FUTURE_H
#define SN_FUTURE_H

#include <sn/common.h>

#include <stdbool.h>

SN_BEGIN_DECLS

#define SN_FUTURE_MAX_DEPTH 32

/* The future that succeeded with value 0: what a continuation or remote function returns
 * when it is done and has no value. A null pointer, so it costs nothing to make. */
#define SN_SUCCESS ((struct sn_future *)0)

struct sn_future;
struct sn_promise;

/* A settled result, as stored by sn_when_all. */
struct sn_result {
    int err;        /* 0 or a negative errno */
    uint64_t value; /* meaningful when err == 0 */
};

/*
 * A continuation for sn_then: called with the input's value when it succeeded. Returns the
 * next future (it may be pending), or SN_SUCCESS ("succeeded with value 0"). Helpers:
 * sn_ready(v), sn_failed(err).
 */
typedef struct sn_future *(*sn_then_fn)(void *arg, uint64_t value);

/* A continuation for sn_then_wrapped: called with every outcome; returns as sn_then_fn. */
typedef struct sn_future *(*sn_wrapped_fn)(void *arg, int err, uint64_t value);

/* A final consumer for sn_done: called once with the outcome; nothing follows it. */
typedef void (*sn_done_fn)(void *arg, int err, uint64_t value);

/*
 * Makes a pending promise and its future, both living on the calling core: returns the
 * promise and stores the future in *fut. Any reactor core (the promise's owner from then on).
 */
SN_API struct sn_promise *sn_promise_new(struct sn_future **fut);

/*
 * Resolves `p` with `value`; its consumer runs now (bounded depth) or from the run queue.
 * Owner core only (the core that made the promise).
 */
SN_API void sn_promise_set(struct sn_promise *p, uint64_t value);

/* Fails `p` with `err` (a negative errno; 0 is turned into -ECANCELED). Owner core only. */
SN_API void sn_promise_fail(struct sn_promise *p, int err);

/* A future that already succeeded with `value`, on the calling core. Any reactor core. */
SN_API SN_MUST_USE struct sn_future *sn_ready(uint64_t value);

/*
 * A future that already failed with `err` (a negative errno; a positive one is negated, 0
 * becomes -ECANCELED), on the calling core. Any reactor core; off a core it aborts like every
 * function here (it cannot report that failure as a failed future: there is no core to put
 * one on).
 */
SN_API SN_MUST_USE struct sn_future *sn_failed(int err);

/*
 * Chains `fn` after `f`: returns a future for the result of the future fn returns. When `f`
 * fails, fn is not called and the result fails with the same error (so `arg` must not own
 * anything that only fn would free: use sn_then_wrapped for that). Takes `f`. Owner core
 * only (fn runs there too).
 */
SN_API SN_MUST_USE struct sn_future *sn_then(struct sn_future *f, sn_then_fn fn, void *arg);

/* Like sn_then, but fn sees every outcome, including errors. Takes `f`. Owner core only. */
SN_API SN_MUST_USE struct sn_future *sn_then_wrapped(struct sn_future *f, sn_wrapped_fn fn,
                                                     void *arg);

/* Consumes `f`: fn(arg, err, value) runs once when it settles. Takes `f`. Owner core only. */
SN_API void sn_done(struct sn_future *f, sn_done_fn fn, void *arg);

/* Consumes `f` and drops its result when it settles. Takes `f`. Owner core only. */
SN_API void sn_ignore(struct sn_future *f);

/*
 * Waits for all `n` futures (taking each): the result succeeds with value n when all did,
 * else fails with the error of the lowest-index failure, after all have settled. When
 * `results` is not NULL, results[i] receives future i's outcome; the array must stay valid
 * until the returned future settles. n == 0 gives a ready future. Owner core only.
 */
SN_API SN_MUST_USE struct sn_future *sn_when_all(struct sn_future *const *futs, unsigned n,
                                                 struct sn_result *results);

/* True when `f` has settled (it is still owned by the caller); SN_SUCCESS has. Owner core only. */
SN_API bool sn_future_available(const struct sn_future *f);

SN_END_DECLS

#endif
