/*
 * libFuzzer entry point for the memcached protocol stack of apps/kv (parser, store, replies):
 * the classic and the meta commands, base64 keys, and the binary protocol's refusal.
 * Built and run by `make fuzz` (Makefile; tests/test_fuzz_corpus.c replays the corpus in the
 * normal suite). By hand, with clang from the repository root:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -I. -D_GNU_SOURCE \
 *       tests/fuzz/fuzz_memcached.c apps/kv/mc_*.c apps/common/outbuf.c -o /tmp/fuzz_memcached
 *   mkdir -p /tmp/mc-corpus
 *   /tmp/fuzz_memcached -max_total_time=60 /tmp/mc-corpus tests/fuzz/memcached/
 *
 * Without libFuzzer (any compiler), add -DFUZZ_STANDALONE and drop "fuzzer," from
 * -fsanitize; the program then runs each file named on its command line once.
 *
 * Each input is one client byte stream. The first byte picks a chunk size; the rest is fed to
 * a fresh parser and store twice, once whole and once in chunks of that size, as a connection
 * would see it after reads of different sizes. Checked: no memory error (sanitizers), every
 * parse consumes no more than it was given, the store stays under its memory limit, and the
 * answers are byte for byte the same both ways.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/kv/mc_exec.h"

#define MEM_LIMIT (64 << 10)
#define ITEM_MAX  (4 << 10)

static int64_t fixed_now(void *arg)
{
    (void)arg;
    return 1700000000;
}

struct session {
    struct mc_parser p;
    struct mc_store *s;
    struct app_outbuf out;
    char *in;
    size_t len;
    int closed;
};

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_memcached: %s\n", what);
        abort();
    }
}

static void pump(struct session *x)
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
        check((size_t)r <= x->len - off, "parse consumed more than it was given");
        off += (size_t)r;
        int rc = mc_exec(x->s, &m, &x->out);
        check(rc >= 0, "mc_exec failed");
        if (rc == 1)
            x->closed = 1;
        struct mc_store_stats st;
        mc_store_stats(x->s, &st);
        check(st.bytes <= st.limit_maxbytes, "store over its memory limit");
    }
    memmove(x->in, x->in + off, x->len - off);
    x->len -= off;
}

/* Feeds data in pieces of `chunk` bytes (0: all at once); returns the answers (caller frees). */
static struct app_outbuf run(const uint8_t *data, size_t size, size_t chunk)
{
    struct session x = {0};
    struct mc_parser_config pc = {.item_max = ITEM_MAX, .get_line_max = 16 << 10};
    /* 16 buckets, not memcached's 65536: calloc'ing 512 KiB twice per input cost ~99% of the
     * run time, and a small table also exercises its growth. */
    struct mc_store_config sc = {
        .mem_limit = MEM_LIMIT, .item_max = ITEM_MAX, .now = fixed_now, .hash_power = 4};
    mc_parser_init(&x.p, &pc);
    x.s = mc_store_create(&sc);
    check(x.s != NULL, "mc_store_create");
    app_outbuf_init(&x.out);
    x.in = malloc(size + 1);
    check(x.in != NULL, "malloc");
    if (!chunk)
        chunk = size ? size : 1;
    for (size_t at = 0; at < size && !x.closed; at += chunk) {
        size_t n = size - at < chunk ? size - at : chunk;
        memcpy(x.in + x.len, data + at, n);
        x.len += n;
        pump(&x);
    }
    free(x.in);
    mc_store_destroy(x.s);
    return x.out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk = 1 + data[0] % 64;
    struct app_outbuf whole = run(data + 1, size - 1, 0);
    struct app_outbuf split = run(data + 1, size - 1, chunk);
    check(whole.len == split.len && (whole.len == 0 || !memcmp(whole.data, split.data, whole.len)),
          "answers depend on how the input was split");
    app_outbuf_free(&whole);
    app_outbuf_free(&split);
    return 0;
}

#ifdef FUZZ_STANDALONE
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 1;
        }
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
        printf("%s: ok\n", argv[i]);
    }
    return 0;
}
#endif
