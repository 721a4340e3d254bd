/*
 * libFuzzer entry point for the memcached protocol stack at the server's proportions: a
 * 64 KiB store, 4 KiB items, 16 KiB get lines and inputs up to 16 KiB, so command lines past
 * MC_LINE_MAX (2 KiB, fixed), values that take many reads and long multi-gets are reached.
 * The slow half of what fuzz_memcached.c did alone (several KiB per input, run twice); what
 * it runs and checks: tests/fuzz/mc_harness.h. Built and run by `make fuzz`; its corpus is
 * tests/fuzz/memcached_long/, replayed by tests/test_fuzz_corpus.c.
 */
#include "mc_harness.h"

static const struct mcf_config mcf_long = {
    .max_input = MCF_INPUT_CAP,
    .mem_limit = 64 << 10,
    .item_max = 4 << 10,
    .get_line_max = 16 << 10,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return mcf_test_one(&mcf_long, data, size);
}

#ifdef FUZZ_STANDALONE
#include "fuzz_standalone.h"
#endif
