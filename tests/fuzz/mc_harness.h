/*
 * The memcached protocol harness shared by the libFuzzer targets fuzz_memcached.c (small
 * limits, short inputs: the fast, broad one) and fuzz_memcached_long.c (the server's real
 * proportions: lines past MC_LINE_MAX, values of KiBs). tests/test_fuzz_corpus.c replays both
 * corpora through the same entry points in the normal suite.
 *
 * Each input is one client byte stream. The first byte picks a chunk size; the rest is fed to
 * a fresh parser and store twice, once whole and once in chunks of that size, as a connection
 * would see it after reads of different sizes. Checked: no memory error (sanitizers), every
 * parse consumes no more than it was given, the executor never fails, the store stays under
 * its memory limit, and the answers are byte for byte the same both ways (an input that one
 * chunk holds whole is run once).
 *
 * Speed (each target should run well over 16,000 inputs a second): the input copy and both
 * answer buffers are static and reused (cleared, never freed), so an input allocates only its
 * two stores (struct, 16-bucket table, items); and ASan's quarantine is kept small
 * (fuzz_asan.h).
 */
#ifndef SN_FUZZ_MC_HARNESS_H
#define SN_FUZZ_MC_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/kv/mc_exec.h"
#include "fuzz_asan.h"

struct mcf_config {
    size_t max_input;    /* longer inputs are skipped (they only make the target slow) */
    size_t mem_limit;    /* the store's -m */
    size_t item_max;     /* the store's and parser's -I */
    size_t get_line_max; /* the parser's longest get line */
};

#define MCF_INPUT_CAP ((size_t)16 << 10) /* the largest max_input a target may ask for */

static int64_t mcf_fixed_now(void *arg)
{
    (void)arg;
    return 1700000000;
}

static void mcf_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_memcached: %s\n", what);
        abort();
    }
}

struct mcf_session {
    struct mc_parser p;
    struct mc_store *s;
    struct app_outbuf *out;
    char *in; /* bytes received and not consumed yet: in[0, len) */
    size_t len;
    int closed;
};

/* Parses and runs every whole command in x->in, then keeps what is left for the next read. */
static void mcf_pump(struct mcf_session *x)
{
    size_t off = 0;
    while (!x->closed) {
        struct mc_cmd m;
        ssize_t r = mc_parse(&x->p, x->in + off, x->len - off, &m);
        if (r < 0) {
            x->closed = 1;
            break;
        }
        if (r == 0)
            break;
        mcf_check((size_t)r <= x->len - off, "parse consumed more than it was given");
        off += (size_t)r;
        int rc = mc_exec(x->s, &m, x->out);
        mcf_check(rc >= 0, "mc_exec failed");
        if (rc == 1)
            x->closed = 1;
        mcf_check(mc_store_bytes(x->s) <= mc_store_mem_limit(x->s), "store over its memory limit");
    }
    memmove(x->in, x->in + off, x->len - off);
    x->len -= off;
}

/* Feeds data in pieces of `chunk` bytes (0: all at once) to a fresh session; answers to out. */
static void mcf_run(const struct mcf_config *cfg, const uint8_t *data, size_t size, size_t chunk,
                    struct app_outbuf *out)
{
    static char in[MCF_INPUT_CAP];
    struct mcf_session x = {.out = out, .in = in};
    struct mc_parser_config pc = {.item_max = cfg->item_max, .get_line_max = cfg->get_line_max};
    /* 16 buckets, not memcached's 65536: calloc'ing 512 KiB twice per input cost ~99% of the
     * run time, and a small table also exercises its growth. */
    struct mc_store_config sc = {.mem_limit = cfg->mem_limit,
                                 .item_max = cfg->item_max,
                                 .now = mcf_fixed_now,
                                 .hash_power = 4};
    mc_parser_init(&x.p, &pc);
    x.s = mc_store_create(&sc);
    mcf_check(x.s != NULL, "mc_store_create");
    app_outbuf_clear(out);
    if (!chunk)
        chunk = size ? size : 1;
    for (size_t at = 0; at < size && !x.closed; at += chunk) {
        size_t n = size - at < chunk ? size - at : chunk;
        memcpy(x.in + x.len, data + at, n);
        x.len += n;
        /* Like the server (kv_conn.c), the parser is called again only once the bytes it
         * said it needs are there; the end of the stream calls it in any case. */
        if (!x.p.need || x.len >= x.p.need || at + n == size)
            mcf_pump(&x);
    }
    mc_store_destroy(x.s);
}

/* One input: byte 0 picks the chunk size (1..64), the rest is the stream. */
static int mcf_test_one(const struct mcf_config *cfg, const uint8_t *data, size_t size)
{
    static struct app_outbuf whole, split; /* reused: cleared, never freed */
    if (size == 0 || size - 1 > cfg->max_input || size - 1 > MCF_INPUT_CAP)
        return 0;
    size_t chunk = 1 + data[0] % 64;
    mcf_run(cfg, data + 1, size - 1, 0, &whole);
    mcf_check(!whole.err, "an answer buffer could not grow");
    if (chunk >= size - 1)
        return 0; /* one chunk holds it all: the split run would be the same run again */
    mcf_run(cfg, data + 1, size - 1, chunk, &split);
    mcf_check(!split.err, "an answer buffer could not grow");
    mcf_check(whole.len == split.len &&
                  (whole.len == 0 || !memcmp(whole.data, split.data, whole.len)),
              "answers depend on how the input was split");
    return 0;
}

#endif
