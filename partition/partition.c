/*
 * The partitioner object: creation from a config, dispatch, destruction, and the hash
 * strategy, small enough to need no file of its own (jump lives in jump.c).
 * See include/sn/partition.h for the contract.
 */
#include "partition/partition_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int sn__perr(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

const char *sn_partition_kind_name(enum sn_partition_kind kind)
{
    switch (kind) {
    case SN_PARTITION_HASH: return "hash";
    case SN_PARTITION_JUMP: return "jump";
    case SN_PARTITION_KETAMA: return "ketama";
    case SN_PARTITION_RENDEZVOUS: return "rendezvous";
    case SN_PARTITION_RANGE: return "range";
    case SN_PARTITION_ROUND_ROBIN: return "round-robin";
    case SN_PARTITION_CUSTOM: return "custom";
    }
    return "unknown";
}

/* Rejects fields that belong to another strategy: a config that sets them is a mistake the
 * caller wants to hear about rather than have silently ignored. */
static int check_foreign_fields(const struct sn_partition_config *c, char *err, size_t errlen)
{
    enum sn_partition_kind k = c->kind;
    const char *name = sn_partition_kind_name(k);
    if (k != SN_PARTITION_KETAMA &&
        (c->nodes || c->ketama_key_hash || c->ketama_ring || c->ketama_names || c->ketama_hash_tag))
        return sn__perr(err, errlen, "%s: nodes/ketama_* fields are for ketama only", name);
    if (k != SN_PARTITION_RENDEZVOUS && c->weights)
        return sn__perr(err, errlen, "%s: weights are for rendezvous only", name);
    if (k != SN_PARTITION_RANGE && (c->split_u64 || c->split_keys))
        return sn__perr(err, errlen, "%s: split points are for range only", name);
    if (k != SN_PARTITION_ROUND_ROBIN && c->rr_start)
        return sn__perr(err, errlen, "%s: rr_start is for round-robin only", name);
    if (k != SN_PARTITION_CUSTOM && (c->fn || c->fn_u64 || c->arg))
        return sn__perr(err, errlen, "%s: fn/fn_u64/arg are for custom only", name);
    return 0;
}

uint64_t sn__key_hash_long(const void *key, size_t len)
{
    return XXH3_64bits(key, len);
}

/*
 * The hash strategy, which sn_partition reaches through `lookup` with one predictable
 * indirect jump and no switch, the key hash inlined (sn__key_hash_fast; the longer keys' paths
 * are tail calls, so the short one saves no registers). Before, with the call into XXH3_64bits
 * and the switch, it cost 3.2 ns a 16-byte key, 1.05x a hand-written `XXH3_64bits(key, len)
 * % n` inlined; now 1.9 ns (bench/bench_partition.c).
 *
 * Keys of 17 to 128 bytes have a function of their own with only XXH3's mid-size path (what
 * XXH3_64bits runs for them, with the default secret and seed 0, so the same hash): the path
 * through XXH3_64bits saved four registers for its call to the long-key hash and tested the
 * length against 16 and 240 again. With it the worst hash row (100-byte keys) went from
 * 1.00-1.13x the hand-written line to 0.97-1.02x (docs/PERFORMANCE.md, "Partitioners").
 * XXH3_len_17to128_64b and XXH3_kSecret are xxhash.h's internals under XXH_INLINE_ALL, not its
 * stable API (checked against xxHash 0.8.1, Debian 12's); partition::hash_and_jump_every_length
 * compares the result with XXH3_64bits at every length, so a change there fails the tests.
 */
__attribute__((flatten, noinline)) static uint32_t hash_lookup_long(const struct sn_partition *p,
                                                                    const void *key, size_t len)
{
    return sn__mulshift(sn__key_hash_long(key, len), p->n);
}

__attribute__((noinline)) static uint32_t hash_lookup_mid(const struct sn_partition *p,
                                                          const void *key, size_t len)
{
    return sn__mulshift(
        XXH3_len_17to128_64b((const xxh_u8 *)key, len, XXH3_kSecret, sizeof(XXH3_kSecret), 0),
        p->n);
}

__attribute__((flatten)) static uint32_t hash_lookup(const struct sn_partition *p, const void *key,
                                                     size_t len)
{
    if (sn_likely(len <= 16))
        return sn__mulshift(sn__key_hash_fast(key, len), p->n);
    if (sn_likely(len <= 128))
        return hash_lookup_mid(p, key, len);
    return hash_lookup_long(p, key, len);
}

/* Jump through the form picked at create, with the key hash inlined (the loop forms). */
__attribute__((flatten)) static uint32_t jump_lookup(const struct sn_partition *p, const void *key,
                                                     size_t len)
{
    return p->u.jump(sn__key_hash_fast(key, len), p->n);
}

/* The form is picked once (no per-key CPU check); the fixed-step forms also get a direct
 * lookup, the key hash and the form in one function with no second indirect call. */
static void init_jump(struct sn_partition *p)
{
    p->u.jump = sn__jump_pick(p->n);
    p->lookup = jump_lookup;
#if defined(__x86_64__) && defined(__GNUC__)
    static const struct {
        uint32_t (*form)(uint64_t key, uint32_t n);
        sn__lookup_fn *lookup;
    } direct[] = {
        {sn__jump_steps16, sn__jump_steps16_key}, {sn__jump_steps32, sn__jump_steps32_key},
        {sn__jump_regs8, sn__jump_regs8_key},     {sn__jump_regs12, sn__jump_regs12_key},
        {sn__jump_regs14, sn__jump_regs14_key},   {sn__jump_regs16, sn__jump_regs16_key},
        {sn__jump_regs24, sn__jump_regs24_key},   {sn__jump_regs8_clean, sn__jump_regs8_key_clean},
    };
    for (size_t i = 0; i < sizeof direct / sizeof direct[0]; i++)
        if (p->u.jump == direct[i].form)
            p->lookup = direct[i].lookup;
#endif
}

static int init_kind(struct sn_partition *p, const struct sn_partition_config *c, char *err,
                     size_t errlen)
{
    switch (c->kind) {
    case SN_PARTITION_HASH: p->lookup = hash_lookup; return 0;
    case SN_PARTITION_JUMP: init_jump(p); return 0;
    case SN_PARTITION_ROUND_ROBIN: p->rr_next = c->rr_start % c->n; return 0;
    case SN_PARTITION_KETAMA: return sn__ketama_init(p, c, err, errlen);
    case SN_PARTITION_RENDEZVOUS: return sn__rendezvous_init(p, c, err, errlen);
    case SN_PARTITION_RANGE: return sn__range_init(p, c, err, errlen);
    case SN_PARTITION_CUSTOM:
        if (!c->fn)
            return sn__perr(err, errlen, "custom: fn (the callback) is required");
        p->u.custom = (struct sn__custom){c->fn, c->fn_u64, c->arg};
        return 0;
    }
    return sn__perr(err, errlen, "unknown partitioner kind %d", (int)c->kind);
}

int sn_partition_create(const struct sn_partition_config *cfg, char *err, size_t errlen,
                        struct sn_partition **out)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return sn__perr(err, errlen, "out must not be NULL");
    *out = NULL;
    if (!cfg)
        return sn__perr(err, errlen, "config must not be NULL");
    if (cfg->kind < SN_PARTITION_HASH || cfg->kind > SN_PARTITION_CUSTOM)
        return sn__perr(err, errlen, "unknown partitioner kind %d", (int)cfg->kind);
    const char *name = sn_partition_kind_name(cfg->kind);
    if (cfg->n == 0)
        return sn__perr(err, errlen, "%s: n must be at least 1", name);
    if (cfg->n > SN_PARTITION_MAX_N)
        return sn__perr(err, errlen, "%s: n=%u is above the limit %u", name, cfg->n,
                        SN_PARTITION_MAX_N);
    int rc = check_foreign_fields(cfg, err, errlen);
    if (rc < 0)
        return rc;

    struct sn_partition *p = calloc(1, sizeof(*p));
    if (!p) {
        sn__perr(err, errlen, "out of memory");
        return -ENOMEM;
    }
    p->kind = cfg->kind;
    p->n = cfg->n;
    rc = init_kind(p, cfg, err, errlen);
    if (rc < 0) {
        free(p); /* the init functions free what they allocated when they fail */
        return rc;
    }
    *out = p;
    return 0;
}

void sn_partition_destroy(struct sn_partition *p)
{
    if (!p)
        return;
    switch (p->kind) {
    case SN_PARTITION_KETAMA: sn__ketama_free(p); break;
    case SN_PARTITION_RENDEZVOUS: sn__rendezvous_free(p); break;
    case SN_PARTITION_RANGE: sn__range_free(p); break;
    default: break;
    }
    free(p);
}

static inline uint32_t rr_next(struct sn_partition *p)
{
    uint32_t r = p->rr_next;
    p->rr_next = r + 1 == p->n ? 0 : r + 1;
    return r;
}

static inline uint32_t custom_fold(uint32_t r, uint32_t n)
{
    return sn_likely(r < n) ? r : r % n;
}

/* The strategies without a `lookup` of their own. Out of line, so that sn_partition's path
 * to `lookup` is a load and a jump, with no registers saved for the switch. */
__attribute__((noinline)) static uint32_t dispatch(struct sn_partition *p, const void *key,
                                                   size_t len)
{
    switch (p->kind) {
    case SN_PARTITION_HASH: return sn__mulshift(sn__key_hash(key, len), p->n); /* unused */
    case SN_PARTITION_JUMP: return p->u.jump(sn__key_hash(key, len), p->n);
    case SN_PARTITION_KETAMA: return sn__ketama_lookup(p, key, len);
    case SN_PARTITION_RENDEZVOUS: return sn__rendezvous_lookup(p, sn__key_hash(key, len));
    case SN_PARTITION_RANGE: return sn__range_lookup(p, key, len);
    case SN_PARTITION_ROUND_ROBIN: return rr_next(p);
    case SN_PARTITION_CUSTOM:
        return custom_fold(p->u.custom.fn(p->u.custom.arg, key, len, p->n), p->n);
    }
    return 0;
}

uint32_t sn_partition(struct sn_partition *p, const void *key, size_t len)
{
    if (sn_likely(p->lookup != NULL))
        return p->lookup(p, key, len);
    return dispatch(p, key, len);
}

uint32_t sn_partition_u64(struct sn_partition *p, uint64_t key)
{
    uint8_t be[8];
    switch (p->kind) {
    case SN_PARTITION_RANGE: return sn__range_lookup_u64(p, key);
    case SN_PARTITION_ROUND_ROBIN: return rr_next(p);
    case SN_PARTITION_CUSTOM:
        if (p->u.custom.fn_u64)
            return custom_fold(p->u.custom.fn_u64(p->u.custom.arg, key, p->n), p->n);
        break;
    default: break;
    }
    sn__be64(be, key);
    return sn_partition(p, be, sizeof(be));
}

void sn_partition_many(struct sn_partition *p, const struct sn_partition_key *keys, size_t count,
                       uint32_t *out)
{
    if (p->kind == SN_PARTITION_KETAMA) {
        sn__ketama_lookup_many(p, keys, count, out);
        return;
    }
    if (p->kind == SN_PARTITION_JUMP) {
        sn__jump_many(p, keys, count, out);
        return;
    }
    for (size_t i = 0; i < count; i++)
        out[i] = sn_partition(p, keys[i].data, keys[i].len);
}

uint32_t sn_partition_count(const struct sn_partition *p)
{
    return p->n;
}

enum sn_partition_kind sn_partition_kind(const struct sn_partition *p)
{
    return p->kind;
}
