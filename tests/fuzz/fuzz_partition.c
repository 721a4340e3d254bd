/*
 * libFuzzer entry point for the partitioner's command-line parser, sn_partition_from_string,
 * and the lookups of whatever it builds: every kind but the ketama family (ketama-*,
 * nutcracker, twemproxy), rendezvous over at most 16 nodes. The ketama family (a ring of
 * hashed points per node takes most of a millisecond to build under the sanitizers) and
 * bigger rendezvous sets (a lookup hashes the key once per node) are fuzz_partition_slow.c,
 * a target of their own. Input layout and checks: tests/fuzz/partition_harness.h.
 *
 * Built and run by `make fuzz` (clang from Debian, -fsanitize=fuzzer,address,undefined) on a
 * copy of the seed corpus tests/fuzz/partition/; tests/test_fuzz_corpus.c replays the corpus
 * through this same function in the normal suite. By hand, from the repository root:
 *
 *   make fuzz FUZZ_SECONDS=60            (all targets), or after it
 *   build-fuzz/fuzz_partition build-fuzz/corpus/partition -max_total_time=60
 */
#include "partition_harness.h"

static int fp_leave_to_slow(const char *spec, uint32_t n)
{
    return fp_is_ketama(spec) || (fp_is_rendezvous(spec) && fp_nodes(spec, n) > FP_FAST_NODES);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fp_test_one(fp_leave_to_slow, data, size);
}
