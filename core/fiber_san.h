/*
 * Internal: the sanitizer side of a fiber switch (core/fiber.c), so that every switch is
 * annotated the same way and plain builds compile it all away.
 *
 * AddressSanitizer must know which stack the thread is on (its stack-use checks and fake
 * stacks are per stack): __sanitizer_start_switch_fiber before each switch names the stack
 * being entered and saves the fake stack of the one being left (NULL when it is left for
 * good, which frees it); __sanitizer_finish_switch_fiber after the switch restores the fake
 * stack and reports the bounds of the stack just left (how a fiber learns the loop's stack).
 *
 * ThreadSanitizer keeps a shadow call stack and a clock per fiber: each fiber gets a context
 * from __tsan_create_fiber, the switch calls __tsan_switch_to_fiber right before the jump
 * (flags 0: the switch orders everything before it before everything after it, which is
 * what running on one thread means), and __tsan_destroy_fiber frees it after its end.
 */
#ifndef SN_CORE_FIBER_SAN_H
#define SN_CORE_FIBER_SAN_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define SN__FIBER_ASAN 1
#else
#define SN__FIBER_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define SN__FIBER_TSAN 1
#else
#define SN__FIBER_TSAN 0
#endif

/* Before switching to the stack [bottom, bottom + size) whose TSan context is `tsan_to`. */
static inline void sn__san_switch_begin(void **fake_save, const void *bottom, size_t size,
                                        void *tsan_to)
{
#if SN__FIBER_ASAN
    __sanitizer_start_switch_fiber(fake_save, bottom, size);
#else
    (void)fake_save, (void)bottom, (void)size;
#endif
#if SN__FIBER_TSAN
    __tsan_switch_to_fiber(tsan_to, 0);
#else
    (void)tsan_to;
#endif
}

/* After a switch has landed: restores `fake` and stores the left stack's bounds. */
static inline void sn__san_switch_end(void *fake, const void **bottom_old, size_t *size_old)
{
#if SN__FIBER_ASAN
    __sanitizer_finish_switch_fiber(fake, bottom_old, size_old);
#else
    (void)fake, (void)bottom_old, (void)size_old;
#endif
}

/* The TSan context of the code running now (the loop's, on the main stack). */
static inline void *sn__san_current(void)
{
#if SN__FIBER_TSAN
    return __tsan_get_current_fiber();
#else
    return NULL;
#endif
}

/* A new TSan context for a fiber named `name` (NULL in plain builds). */
static inline void *sn__san_create(const char *name)
{
#if SN__FIBER_TSAN
    void *t = __tsan_create_fiber(0);
    __tsan_set_fiber_name(t, name);
    return t;
#else
    (void)name;
    return NULL;
#endif
}

static inline void sn__san_destroy(void *tsan)
{
#if SN__FIBER_TSAN
    if (tsan)
        __tsan_destroy_fiber(tsan);
#else
    (void)tsan;
#endif
}

/* Makes a finished fiber's stack addressable again (ASan poisons frames' redzones). */
static inline void sn__san_stack_reset(void *lo, size_t size)
{
#if SN__FIBER_ASAN
    ASAN_UNPOISON_MEMORY_REGION(lo, size);
#else
    (void)lo, (void)size;
#endif
}

#endif
