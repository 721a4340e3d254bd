/*
 * The partitioner harness shared by the libFuzzer targets fuzz_partition.c (every kind but
 * ketama, small rendezvous: the fast, broad one) and fuzz_partition_slow.c (ketama builds and
 * rendezvous over many nodes). tests/test_fuzz_corpus.c replays both corpora through the same
 * entry points in the normal suite.
 *
 * What an input drives: sn_partition_from_string, then the lookups of whatever it builds.
 * Input layout: byte 0 picks n (the caller's partition count: 0 "take it from the spec", or
 * 1..64, or SN_PARTITION_MAX_N and one above it), byte 1 picks the length of the error buffer
 * (0..63, allocated to that exact size so ASan sees any write past it), the rest up to the
 * first NUL is the spec, and what follows the NUL (or the spec itself) is key material.
 *
 * Checked besides memory errors and undefined behaviour: the call returns 0, -EINVAL or
 * -ENOMEM; on failure *out is NULL and a non-empty error buffer holds a non-empty,
 * NUL-terminated message; on success the count agrees with a non-zero n and is at most
 * SN_PARTITION_MAX_N, every lookup is < N, byte and u64 lookups agree (big-endian key space),
 * a second partitioner built from the same spec gives the same answers (no hidden
 * randomness), and sn_partition_many over all key prefixes gives sn_partition's answers.
 * Round-robin ignores keys, so for it only the bound is checked.
 */
#ifndef SN_FUZZ_PARTITION_HARNESS_H
#define SN_FUZZ_PARTITION_HARNESS_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sn/partition.h>

#include "fuzz_asan.h"

#define FP_MAX_INPUT 1024
#define FP_FAST_NODES                                                                              \
    16 /* rendezvous sets up to this size are fuzz_partition's, bigger ones                        \
          fuzz_partition_slow's */

static void fp_check(int ok, const char *what, const char *spec)
{
    if (!ok) {
        fprintf(stderr, "fuzz_partition: %s (spec \"%s\")\n", what, spec);
        abort();
    }
}

static uint32_t fp_pick_n(uint8_t b)
{
    if (b < 200)
        return b % 65; /* 0 .. 64 */
    if (b < 230)
        return SN_PARTITION_MAX_N;
    return SN_PARTITION_MAX_N + 1;
}

/* Whether the spec's kind name (the part before the first ':') is `name`. */
static int fp_name_is(const char *spec, const char *name)
{
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    return len == strlen(name) && !strncmp(spec, name, len);
}

/* The ketama family builds a ring: ketama[-...], nutcracker[-...][/TAG], twemproxy[...]. */
static int fp_is_ketama(const char *spec)
{
    return !strncmp(spec, "ketama", 6) || !strncmp(spec, "nutcracker", 10) ||
           !strncmp(spec, "twemproxy", 9);
}

static int fp_is_rendezvous(const char *spec)
{
    return fp_name_is(spec, "rendezvous") || fp_name_is(spec, "hrw");
}

/*
 * The node count a valid ketama or rendezvous spec would build: n when given, else the
 * number ("ketama:N") or the number of list items after the ':'.
 */
static unsigned long fp_nodes(const char *spec, uint32_t n)
{
    if (n)
        return n;
    const char *colon = strchr(spec, ':');
    if (!colon)
        return 0;
    char *end;
    unsigned long v = strtoul(colon + 1, &end, 10);
    if (end != colon + 1 && *end == '\0' && fp_is_ketama(spec))
        return v;
    unsigned long items = 1;
    for (const char *c = colon + 1; *c; c++)
        items += *c == ',';
    return items;
}

static uint64_t fp_load_be(const uint8_t b[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

static void fp_lookups(struct sn_partition *p, struct sn_partition *q, const uint8_t *keys,
                       size_t klen, const char *spec)
{
    uint32_t count = sn_partition_count(p);
    int rr = sn_partition_kind(p) == SN_PARTITION_ROUND_ROBIN;
    /* Every prefix of the key material is a key (the empty key included). */
    for (size_t len = 0; len <= klen && len <= 64; len++) {
        uint32_t a = sn_partition(p, len ? keys : NULL, len);
        uint32_t b = sn_partition(q, len ? keys : NULL, len);
        fp_check(a < count && b < count, "byte lookup out of range", spec);
        fp_check(rr || a == b, "two partitioners from one spec disagree", spec);
    }
    for (size_t off = 0; off + 8 <= klen && off <= 64; off++) {
        uint64_t k = fp_load_be(keys + off);
        uint32_t a = sn_partition_u64(p, k);
        uint32_t b = sn_partition(q, keys + off, 8);
        fp_check(a < count && b < count, "u64 lookup out of range", spec);
        fp_check(rr || a == b, "u64 and big-endian byte lookups disagree", spec);
    }
    /* The same prefixes in one batch: sn_partition_many must agree key for key (its vector
     * lanes for ketama and jump included). */
    struct sn_partition_key batch[65];
    uint32_t many[65];
    size_t nb = 0;
    for (size_t len = 0; len <= klen && len <= 64; len++)
        batch[nb++] = (struct sn_partition_key){len ? keys : NULL, len};
    sn_partition_many(p, batch, nb, many);
    for (size_t i = 0; i < nb && !rr; i++)
        fp_check(many[i] == sn_partition(q, batch[i].data, batch[i].len),
                 "sn_partition_many disagrees with sn_partition", spec);
    for (size_t i = 0; i < nb; i++)
        fp_check(many[i] < count, "batch lookup out of range", spec);
    if (sn_partition_kind(p) == SN_PARTITION_KETAMA)
        for (uint32_t i = 0; i < count; i++)
            fp_check(sn_partition_ketama_host(p, i) != NULL, "ketama node without host", spec);
}

/*
 * The partitioners built for the last successful spec: libFuzzer often mutates only the key
 * material, and building again what was just built and checked (a ketama ring, a range
 * table) would only repeat the same work. Reachable from here, so no leak at exit.
 */
static struct {
    char *spec;
    uint32_t n;
    struct sn_partition *p, *q;
} fp_last;

static void fp_keep(char *spec, uint32_t n, struct sn_partition *p, struct sn_partition *q)
{
    sn_partition_destroy(fp_last.p);
    sn_partition_destroy(fp_last.q);
    free(fp_last.spec);
    fp_last.spec = spec;
    fp_last.n = n;
    fp_last.p = p;
    fp_last.q = q;
}

/* Builds spec twice (the checks of a build, at the top); true with both in fp_last. */
static int fp_build(char *spec, uint32_t n, size_t errlen)
{
    char *err = errlen ? malloc(errlen) : NULL;
    struct sn_partition *p = (struct sn_partition *)spec; /* must be overwritten */
    int rc = sn_partition_from_string(spec, n, err, errlen, &p);
    fp_check(rc == 0 || rc == -EINVAL || rc == -ENOMEM, "unexpected return value", spec);
    if (rc < 0) {
        fp_check(p == NULL, "*out not NULL after a failure", spec);
        if (errlen)
            fp_check(memchr(err, 0, errlen) != NULL && (errlen == 1 || err[0] != '\0'),
                     "error message missing or not terminated", spec);
        free(err);
        return 0;
    }
    free(err);
    fp_check(p != NULL, "*out NULL after success", spec);
    uint32_t count = sn_partition_count(p);
    fp_check(count >= 1 && count <= SN_PARTITION_MAX_N, "count out of range", spec);
    fp_check(n == 0 || count == n, "count disagrees with n", spec);
    struct sn_partition *q = NULL;
    fp_check(sn_partition_from_string(spec, n, NULL, 0, &q) == 0, "second build failed", spec);
    fp_keep(spec, n, p, q);
    return 1;
}

/*
 * One input (layout at the top). `skip` says which specs this target leaves to the other one;
 * they return at once.
 */
static int fp_test_one(int (*skip)(const char *spec, uint32_t n), const uint8_t *data, size_t size)
{
    if (size < 2 || size > FP_MAX_INPUT)
        return 0;
    uint32_t n = fp_pick_n(data[0]);
    size_t errlen = data[1] % 64;
    const uint8_t *rest = data + 2;
    size_t rlen = size - 2;
    const uint8_t *nul = memchr(rest, 0, rlen);
    size_t slen = nul ? (size_t)(nul - rest) : rlen;
    char *spec = malloc(slen + 1);
    memcpy(spec, rest, slen);
    spec[slen] = '\0';
    const uint8_t *keys = nul ? nul + 1 : rest;
    size_t klen = nul ? rlen - slen - 1 : rlen;
    if (fp_last.spec && n == fp_last.n && !strcmp(spec, fp_last.spec)) {
        free(spec);
        spec = fp_last.spec;
    } else if (skip(spec, n) || !fp_build(spec, n, errlen)) {
        free(spec);
        return 0;
    }
    fp_lookups(fp_last.p, fp_last.q, keys, klen, spec);
    return 0;
}

#endif
