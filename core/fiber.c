/*
 * Fibers (contract in include/sn/fiber.h, design in core/fiber.h).
 *
 * Life of a fiber: spawn takes a stack, puts the control block at its top, prepares the
 * first context below it and queues the fiber's task. The task switches to the fiber
 * (run_fiber); the fiber runs until it awaits a pending future (it registers await_wake as
 * the future's consumer and switches back), yields (it queues its own task and switches
 * back), or returns (fiber_main marks it done and switches back for good). Back on the
 * loop's stack, a done fiber is ended there (fiber_end): its stack goes back to the pool
 * before its future settles, so whatever the result wakes never runs on a dead stack.
 * await_wake only records the outcome and queues the task: a fiber is always resumed from
 * the run queue, never inline inside whatever settled the future.
 */
#include <sn/fiber.h>
#include <sn/future.h>
#include <sn/timer.h>

#include "core/alloc.h"
#include "core/fiber.h"
#include "core/fiber_san.h"
#include "core/sched.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { F_QUEUED, F_RUNNING, F_WAITING, F_DONE, F_ABANDONED };

struct sn__fiber {
    struct sn_task task;    /* resumes the fiber from the run queue */
    void *sp;               /* saved stack pointer while the fiber is not running */
    struct sn__stack stack; /* the whole stack, this block at its top */
    size_t asked;           /* usable bytes asked for (after rounding) */
    char *painted;          /* measured stack: the painted area ends here; NULL otherwise */
    sn_fiber_fn fn;
    void *arg;
    struct sn_promise *promise;
    struct sn__fiber *prev, *next; /* the core's live (or abandoned) list */
    size_t *stack_used;
    uint64_t value; /* an await's outcome, then the fiber's own */
    int err;
    unsigned depth; /* inline continuation depth while the fiber is suspended */
    uint8_t state;
    uint8_t tag; /* run tag of the code that spawned it: the fiber runs under it */
    void *fake_stack; /* ASan */
    void *tsan;       /* TSan */
    char name[SN_FIBER_NAME_MAX];
};

/* The control block's share of the top of the stack. */
#define BLOCK_SIZE ((sizeof(struct sn__fiber) + 63) & ~(size_t)63)
#define PAGE       4096u
#define PAINT      0x5aa5c33cf00fe11eull
/* Lines of shutdown report per call; the rest are counted. */
#define REPORT_MAX 16

static const char default_name[] = "fiber";

/* ---- stacks --------------------------------------------------------------------------- */

static int stack_get(struct sn__fibers *fs, size_t size, struct sn__stack *st)
{
    if (fs->stacks)
        return fs->stacks->get(fs->stacks->ctx, size, st);
    size = (size + 63) & ~(size_t)63;
    st->lo = sn__alloc(NULL, size);
    st->size = size;
    return st->lo ? 0 : -ENOMEM;
}

static void stack_put(struct sn__fibers *fs, const struct sn__stack *st)
{
    if (fs->stacks)
        fs->stacks->put(fs->stacks->ctx, st);
    else
        sn__free(NULL, st->lo, st->size);
}

void sn__fibers_set_stacks(struct sn__sched *s, const struct sn__stack_provider *p)
{
    s->fibers.stacks = p;
}

/* Where the fiber's own frames begin: right below its control block. */
static char *stack_top(const struct sn__fiber *f)
{
    return (char *)f;
}

__attribute__((no_sanitize_address)) static void paint(char *lo, char *end)
{
    for (uint64_t *w = (uint64_t *)lo; (char *)(w + 1) <= end; w++)
        *w = PAINT;
}

/* Bytes between the top and the deepest word that is no longer paint. */
__attribute__((no_sanitize_address)) static size_t painted_used(const struct sn__fiber *f)
{
    const uint64_t *w = (const uint64_t *)f->stack.lo;
    while ((const char *)(w + 1) <= f->painted && *w == PAINT)
        w++;
    return (size_t)(stack_top(f) - (const char *)w);
}

/* ---- switching ------------------------------------------------------------------------ */

/* From the loop's stack: runs f until it suspends or ends. */
static void run_fiber(struct sn__sched *s, struct sn__fiber *f)
{
    struct sn__fibers *fs = &s->fibers;
    assert(!fs->current && "a fiber is resumed from the loop's stack only");
    unsigned depth = s->depth;
    uint8_t tag = s->tag;
    s->depth = f->depth;
    s->tag = f->tag;
    fs->current = f;
    f->state = F_RUNNING;
    fs->main_tsan = sn__san_current();
    sn__san_switch_begin(&fs->main_fake_stack, f->stack.lo, f->stack.size, f->tsan);
    sn__ctx_switch(&fs->main_sp, f->sp);
    sn__san_switch_end(fs->main_fake_stack, NULL, NULL);
    fs->current = NULL;
    f->depth = s->depth;
    f->tag = s->tag;
    s->depth = depth;
    s->tag = tag;
}

/* From the fiber's stack: back to the loop, until a task resumes the fiber. */
static void suspend(struct sn__fibers *fs, struct sn__fiber *f)
{
    sn__san_switch_begin(&f->fake_stack, fs->main_bottom, fs->main_size, fs->main_tsan);
    sn__ctx_switch(&f->sp, fs->main_sp);
    sn__san_switch_end(f->fake_stack, &fs->main_bottom, &fs->main_size);
}

static _Noreturn void fiber_main(void *arg)
{
    struct sn__fiber *f = arg;
    struct sn__fibers *fs = &sn__tls_sched->fibers;
    sn__san_switch_end(NULL, &fs->main_bottom, &fs->main_size);
    uint64_t value = 0;
    int err = f->fn(f->arg, &value);
    f->err = err;
    f->value = err ? 0 : value;
    f->state = F_DONE;
    /* Leaving for good: ASan frees the fake stack (NULL save), the loop ends the fiber. */
    sn__san_switch_begin(NULL, fs->main_bottom, fs->main_size, fs->main_tsan);
    sn__ctx_switch(&f->sp, fs->main_sp);
    __builtin_unreachable();
}

/* ---- life and death ------------------------------------------------------------------- */

static void live_link(struct sn__fiber **head, struct sn__fiber *f)
{
    f->prev = NULL;
    f->next = *head;
    if (*head)
        (*head)->prev = f;
    *head = f;
}

static void live_unlink(struct sn__fiber **head, struct sn__fiber *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        *head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    f->prev = f->next = NULL;
}

/* Leaves the live list and the counts (the end of a fiber, or its abandonment). */
static void forget(struct sn__fibers *fs, struct sn__fiber *f)
{
    live_unlink(&fs->live, f);
    fs->nlive--;
    fs->stack_bytes -= f->asked;
}

static void fiber_end(struct sn__sched *s, struct sn__fiber *f)
{
    struct sn__fibers *fs = &s->fibers;
    int err = f->err;
    uint64_t value = f->value;
    struct sn_promise *p = f->promise;
    sn__san_destroy(f->tsan);
    sn__san_stack_reset(f->stack.lo, f->stack.size);
    if (f->painted) {
        size_t used = painted_used(f);
        if (used > fs->high_water)
            fs->high_water = used;
        if (f->stack_used)
            *f->stack_used = used;
    }
    forget(fs, f);
    struct sn__stack st = f->stack;
    stack_put(fs, &st); /* f is gone from here on */
    if (err)
        sn_promise_fail(p, err);
    else
        sn_promise_set(p, value);
}

static void resume_task(struct sn_task *t)
{
    struct sn__fiber *f = (struct sn__fiber *)t;
    struct sn__sched *s = sn__tls_sched;
    if (f->state == F_ABANDONED)
        return;
    run_fiber(s, f);
    if (f->state == F_DONE)
        fiber_end(s, f);
}

static void fiber_init(struct sn__fiber *f, const struct sn__stack *st, size_t asked,
                       sn_fiber_fn fn, void *arg, const struct sn_fiber_opts *o)
{
    memset(f, 0, sizeof *f);
    f->stack = *st;
    f->asked = asked;
    f->fn = fn;
    f->arg = arg;
    f->stack_used = o->stack_used;
    const char *name = o->name ? o->name : default_name;
    size_t n = strnlen(name, SN_FIBER_NAME_MAX - 1);
    memcpy(f->name, name, n);
    f->name[n] = '\0';
}

static size_t round_stack(size_t size)
{
    if (size == 0)
        size = SN_FIBER_DEFAULT_STACK;
    if (size < SN_FIBER_MIN_STACK)
        size = SN_FIBER_MIN_STACK;
    return (size + PAGE - 1) & ~(size_t)(PAGE - 1);
}

struct sn_future *sn_fiber_spawn(sn_fiber_fn fn, void *arg, const struct sn_fiber_opts *opts)
{
    struct sn__sched *s = sn__sched_here("sn_fiber_spawn");
    struct sn_fiber_opts o = opts ? *opts : (struct sn_fiber_opts){0};
    if (!fn || (o.flags & ~SN_FIBER_MEASURE_STACK) || o.stack_size > SN_FIBER_MAX_STACK)
        return sn_failed(-EINVAL);
    struct sn__fibers *fs = &s->fibers;
    size_t asked = round_stack(o.stack_size);
    struct sn__stack st;
    int rc = stack_get(fs, asked + BLOCK_SIZE, &st);
    if (rc < 0)
        return sn_failed(rc);
    struct sn__fiber *f = (struct sn__fiber *)(st.lo + st.size - BLOCK_SIZE);
    fiber_init(f, &st, asked, fn, arg, &o);
    f->tag = s->tag;
    if (o.group)
        f->tag = (uint8_t)((s->tag & ~SN__TAG_GROUP) | sn__sched_group_enter(s, o.group));
    if (o.group)
        f->tag = (uint8_t)((s->tag & ~SN__TAG_GROUP) | sn__sched_group_enter(s, o.group));
    if ((o.flags & SN_FIBER_MEASURE_STACK) || fs->measure_all) {
        f->painted = stack_top(f) - 256; /* above: the first context and fiber_main */
        paint(st.lo, f->painted);
    }
    f->sp = sn__ctx_make(stack_top(f), fiber_main, f);
    f->tsan = sn__san_create(f->name);
    live_link(&fs->live, f);
    fs->nlive++;
    fs->spawned++;
    fs->stack_bytes += asked;
    struct sn_future *fut;
    f->promise = sn_promise_new(&fut);
    f->state = F_QUEUED;
    sn_task_init(&f->task, resume_task);
    sn__sched_push(s, f->tag & SN__TAG_GROUP, &f->task);
    return fut;
}

/* ---- waiting -------------------------------------------------------------------------- */

static void await_wake(void *arg, int err, uint64_t value)
{
    struct sn__fiber *f = arg;
    if (f->state == F_ABANDONED)
        return;
    assert(f->state == F_WAITING);
    f->err = err;
    f->value = value;
    f->state = F_QUEUED;
    sn_schedule(&f->task);
}

int sn_await(struct sn_future *f, uint64_t *value)
{
    struct sn__sched *s = sn__sched_here("sn_await");
    struct sn__fiber *self = s->fibers.current;
    int err = 0;
    uint64_t v = 0;
    if (!self) {
        sn_ignore(f);
        err = -EDEADLK;
    } else if (f && !sn__future_take(f, &err, &v)) {
        self->state = F_WAITING;
        sn_done(f, await_wake, self);
        suspend(&s->fibers, self);
        err = self->err;
        v = self->value;
    }
    if (value)
        *value = err ? 0 : v;
    return err;
}

int sn_fiber_sleep_ns(uint64_t ns)
{
    if (!sn_in_fiber())
        return -EDEADLK;
    return sn_await(sn_sleep(ns), NULL);
}

int sn_fiber_yield(void)
{
    struct sn__sched *s = sn__tls_sched;
    struct sn__fiber *self = s ? s->fibers.current : NULL;
    if (!self)
        return -EDEADLK;
    self->state = F_QUEUED;
    sn_schedule(&self->task);
    suspend(&s->fibers, self);
    return s->stopping ? -ECANCELED : 0;
}

/* ---- questions ------------------------------------------------------------------------ */

static struct sn__fiber *current(void)
{
    struct sn__sched *s = sn__tls_sched;
    return s ? s->fibers.current : NULL;
}

bool sn_in_fiber(void)
{
    return current() != NULL;
}

const char *sn_fiber_name(void)
{
    struct sn__fiber *f = current();
    return f ? f->name : NULL;
}

size_t sn_fiber_stack_used(void)
{
    struct sn__fiber *f = current();
    return f && f->painted ? painted_used(f) : 0;
}

bool sn__fiber_current_stack(struct sn__stack *st, size_t *asked, const char **name)
{
    struct sn__fiber *f = current();
    if (!f)
        return false;
    *st = f->stack;
    *asked = f->asked;
    *name = f->name;
    return true;
}

/* ---- shutdown ------------------------------------------------------------------------- */

uint64_t sn__fibers_abandon(struct sn__sched *s, const char *why)
{
    struct sn__fibers *fs = &s->fibers;
    assert(!fs->current);
    /* Take the whole list first: failing a future may spawn fibers, which stay alive. */
    struct sn__fiber *list = fs->live;
    fs->live = NULL;
    uint64_t n = 0;
    while (list) {
        struct sn__fiber *f = list;
        list = f->next;
        fs->nlive--;
        fs->stack_bytes -= f->asked;
        if (n < REPORT_MAX)
            fprintf(stderr, "libsn: core %u: fiber %s %s: abandoned without unwinding\n", s->id,
                    f->name, why);
        f->state = F_ABANDONED;
        live_link(&fs->abandoned, f);
        n++;
        sn_promise_fail(f->promise, -ECANCELED);
    }
    if (n > REPORT_MAX)
        fprintf(stderr, "libsn: core %u: %llu more fibers abandoned\n", s->id,
                (unsigned long long)(n - REPORT_MAX));
    return n;
}

void sn__fibers_release(struct sn__sched *s)
{
    struct sn__fibers *fs = &s->fibers;
    struct sn__fiber *f;
    while ((f = fs->abandoned)) {
        live_unlink(&fs->abandoned, f);
        sn__san_destroy(f->tsan);
        sn__san_stack_reset(f->stack.lo, f->stack.size);
        struct sn__stack st = f->stack;
        stack_put(fs, &st);
    }
}
