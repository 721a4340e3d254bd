/*
 * Message checking and mesh helpers shared by the tests/test_mesh*.c binaries.
 */
#ifndef SN_TESTS_MESH_UTIL_H
#define SN_TESTS_MESH_UTIL_H

#include <criterion/criterion.h>
#include <sn.h>

#include "core/mesh_internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

#define MAXN 8

/* ---------------------------------------------------------------- message checking */

/*
 * What one receiver has seen. Written only by the thread acting as that receiver (the handler
 * runs there); senders read `next` to learn that their messages arrived.
 */
struct rx {
    _Atomic uint64_t next[MAXN]; /* next sequence number expected from each sender */
    uint64_t got;
    uint64_t errors;
} SN_CACHE_ALIGNED;

struct check {
    unsigned n;
    struct rx rx[MAXN];
};

/* value = from << 48 | to << 32 | seq: lets the handler check sender, receiver and order. */
static inline uint64_t tag(unsigned from, unsigned to, uint64_t seq)
{
    return (uint64_t)from << 48 | (uint64_t)to << 32 | (seq & 0xffffffffu);
}

static inline void check_fn(const struct sn_msg *msg, unsigned from)
{
    struct check *c = msg->arg;
    unsigned f = (unsigned)(msg->value >> 48);
    unsigned to = (unsigned)(msg->value >> 32) & 0xffff;
    uint64_t seq = msg->value & 0xffffffffu;
    struct rx *rx = msg->token;
    uint64_t next = f < MAXN ? atomic_load_explicit(&rx->next[f], memory_order_relaxed) : 0;

    if (f != from || to >= c->n || rx != &c->rx[to] || seq != (next & 0xffffffffu)) {
        rx->errors++;
        return;
    }
    atomic_store_explicit(&rx->next[from], next + 1, memory_order_relaxed);
    rx->got++;
}

static inline struct sn_msg check_msg(struct check *c, unsigned from, unsigned to, uint64_t seq)
{
    return (struct sn_msg){
        .fn = check_fn, .arg = c, .token = &c->rx[to], .value = tag(from, to, seq)};
}

static inline struct sn_mesh *make_mesh(unsigned n, uint32_t cap, size_t limit)
{
    struct sn_mesh_config cfg = {.ncores = n, .ring_capacity = cap, .overflow_limit = limit};
    struct sn_mesh *m = NULL;
    int rc = sn_mesh_create(&cfg, &m);
    cr_assert_eq(rc, 0, "sn_mesh_create: %s", sn_strerror(rc));
    cr_assert_not_null(m);
    return m;
}

static inline struct sn_mesh_stats stats_of(struct sn_mesh *m, unsigned core)
{
    struct sn_mesh_stats st;
    sn_mesh_stats(m, core, &st);
    return st;
}

#endif
