/*
 * Internal: a core's pool of fiber stacks (the provider of core/fiber.h), and the overflow
 * handler that recognises a fiber running into the guard region below its stack.
 *
 * Stacks are cut from slabs: one anonymous mapping (MAP_NORESERVE) of many slots, each slot
 * a guard region (sn__stack_guard_size()) followed by the stack. Only the pages a fiber
 * touches become resident; a stack that returns to the pool keeps its pages for the next
 * fiber, and the pool keeps every slab until the run ends (it holds the peak number of
 * stacks). Stacks are sorted into classes by size (page-rounded), one free list each.
 *
 * Guards: each guard region costs a mapping split when made with mprotect(PROT_NONE): two
 * VMAs per stack, so vm.max_map_count (65530 by default) would cap a process at ~32,000
 * fibers. Linux 6.13 added madvise(MADV_GUARD_INSTALL), which marks the guard pages in the
 * page tables without splitting the mapping: a slab stays one VMA however many stacks it
 * holds. The pool uses it when the kernel has it and falls back to mprotect otherwise (then
 * a spawn fails with -ENOMEM once the map count is exhausted).
 *
 * Threads: a pool belongs to one core and is used by its thread only (created and destroyed
 * by sn_run's thread while no core runs).
 */
#ifndef SN_REACTOR_FIBER_STACK_H
#define SN_REACTOR_FIBER_STACK_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/fiber.h"

/* Bytes of guard below every stack: 16 KiB, or one page where pages are larger. */
size_t sn__stack_guard_size(void);

struct sn__stack_pool;

/* A new empty pool in *out (maps nothing yet): 0 or -ENOMEM. */
int sn__stack_pool_create(struct sn__stack_pool **out);

/* Unmaps every slab (stacks still handed out become invalid). NULL is fine. */
void sn__stack_pool_destroy(struct sn__stack_pool *p);

/* The provider to install with sn__fibers_set_stacks; valid as long as the pool. */
const struct sn__stack_provider *sn__stack_pool_provider(struct sn__stack_pool *p);

/* Bytes the pool has mapped, guards included. */
uint64_t sn__stack_pool_mapped(const struct sn__stack_pool *p);

/* How guards are made: "madvise" (MADV_GUARD_INSTALL), "mprotect", or "none yet". */
const char *sn__stack_guard_kind(void);

/* ---- overflow handler (reactor/fiber_guard.c) -------------------------------------------- */

/*
 * Installs the process's SIGSEGV handler (sn_run, before the cores start): a fault in the
 * guard region of the running fiber's stack prints
 * "libsn: fiber <name> on core N overflowed its <size>-byte stack" and aborts; every other
 * fault goes to the handler that was there before (the default one: the process dies of
 * SIGSEGV as usual). 0 or -errno.
 */
int sn__fiber_guard_install(void);

/* Puts the previous SIGSEGV handler back (sn_run, after the cores stopped). */
void sn__fiber_guard_uninstall(void);

/* The calling thread's alternate signal stack, on which the handler runs. */
struct sn__altstack {
    void *mem;
    size_t size;
    stack_t old;
    int on;
};

/* Gives the calling thread an alternate signal stack (each reactor thread). 0 or -errno. */
int sn__altstack_init(struct sn__altstack *a);

/* Restores the thread's previous alternate stack and frees this one. */
void sn__altstack_exit(struct sn__altstack *a);

#endif
