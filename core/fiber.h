/*
 * Internal: fibers (include/sn/fiber.h) and what the reactor hands to them.
 *
 * A fiber's control block lives at the top of its own stack, so a spawn takes one stack
 * from the core's pool and nothing else but its future. Fibers switch only with the loop's
 * own stack ("main"): a task resumes a fiber, the fiber runs until it awaits a pending
 * future, yields or returns, and switches back to the task that resumed it. No fiber ever
 * switches to another fiber directly, so one saved main stack pointer per core suffices.
 *
 * Stacks come from a provider the reactor installs per core (reactor/fiber_stack.c: mmap'd
 * slabs with guard regions). Without one (a unit test that binds a scheduler to its own
 * thread) stacks come from the core's allocator, without a guard.
 *
 * Everything here is touched by the owning core's thread only.
 */
#ifndef SN_CORE_FIBER_H
#define SN_CORE_FIBER_H

#include <sn/fiber.h>
#include <sn/sched.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A stack: [lo, lo + size) usable, lo + size 64-byte aligned. `size` covers the block too. */
struct sn__stack {
    char *lo;
    size_t size;
};

/* Where a core's fiber stacks come from (the reactor's pool, reactor/fiber_stack.c). */
struct sn__stack_provider {
    /* Stores a stack of at least `size` usable bytes in *out: 0, or -ENOMEM. */
    int (*get)(void *ctx, size_t size, struct sn__stack *out);
    /* Takes back a stack from get (its contents are garbage from now on). */
    void (*put)(void *ctx, const struct sn__stack *st);
    void *ctx;
};

struct sn__fiber;

/* One core's fibers; embedded in struct sn__sched, zero-initialised by sn__sched_init. */
struct sn__fibers {
    void *main_sp;                           /* the loop's stack pointer while a fiber runs */
    struct sn__fiber *current;               /* the fiber running now, NULL on the main stack */
    struct sn__fiber *live;                  /* every fiber not yet ended (a list, for shutdown) */
    struct sn__fiber *abandoned;             /* abandoned at shutdown, stacks kept until release */
    const struct sn__stack_provider *stacks; /* NULL: the core's allocator */
    uint64_t nlive;                          /* fibers spawned and not ended */
    uint64_t spawned;                        /* fibers ever spawned */
    uint64_t stack_bytes;                    /* usable stack bytes of the live fibers */
    uint64_t high_water;                     /* most stack any measured fiber of this core used */
    bool measure_all;                        /* SN_FIBER_STACK_CHECK: measure every fiber */
    /* Sanitizer bookkeeping of the main stack (unused in plain builds). */
    const void *main_bottom;
    size_t main_size;
    void *main_fake_stack;
    void *main_tsan;
};

struct sn__sched;

/* Installs the stack provider of s (NULL: the core's allocator). Before the first spawn. */
void sn__fibers_set_stacks(struct sn__sched *s, const struct sn__stack_provider *p);

/*
 * Shutdown: abandons every live fiber of s (reactor/loop.c, at the end of a run or past
 * fiber_stop_timeout_ms). Each is reported on stderr with `why`, never resumed again, and
 * its future fails with -ECANCELED; its stack goes back to the provider (the fiber does not
 * unwind). Returns how many were abandoned.
 */
uint64_t sn__fibers_abandon(struct sn__sched *s, const char *why);

/*
 * Gives the stacks of abandoned fibers back (the end of a run, on the core's thread, once
 * nothing can settle a future any more; and sn__sched_destroy). Idempotent.
 */
void sn__fibers_release(struct sn__sched *s);

/*
 * For the overflow handler (async-signal-safe: plain reads): when the calling thread runs a
 * fiber, stores its stack, usable size as asked and name, and returns true.
 */
bool sn__fiber_current_stack(struct sn__stack *st, size_t *asked, const char **name);

/*
 * The context switch (core/fiber_switch.c, assembly): saves the callee-saved registers on
 * the current stack, stores the stack pointer in *save, and continues on the stack `to`
 * (a pointer saved by an earlier switch, or made by sn__ctx_make). Returns when something
 * switches back to *save.
 */
void sn__ctx_switch(void **save, void *to);

/*
 * Prepares a stack whose top is `top` (16-byte aligned) so that switching to the returned
 * pointer calls fn(arg) on it; fn must never return (it switches away for good instead).
 */
void *sn__ctx_make(void *top, void (*fn)(void *arg), void *arg);

#endif
