/*
 * libFuzzer entry point for the memcached protocol stack of apps/kv (parser, store, replies:
 * the classic and the meta commands, base64 keys, and the binary protocol's refusal) at small
 * proportions: a 512-byte store, 128-byte items, 64-byte get lines and inputs up to 512
 * bytes, so eviction, "too large" and over-long get lines are all a few bytes away. What it
 * runs and checks: tests/fuzz/mc_harness.h. The same stack at the server's proportions (lines
 * past MC_LINE_MAX, KiB values) is fuzz_memcached_long.c, a slower target of its own.
 *
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
 */
#include "mc_harness.h"

static const struct mcf_config mcf_small = {
    .max_input = 512,
    .mem_limit = 512,
    .item_max = 128,
    .get_line_max = 64,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return mcf_test_one(&mcf_small, data, size);
}

#ifdef FUZZ_STANDALONE
#include "fuzz_standalone.h"
#endif
