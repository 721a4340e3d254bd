/*
 * libFuzzer entry point for the slow half of the partitioner specs that fuzz_partition.c
 * leaves out: the ketama family (ketama, ketama-*, nutcracker, twemproxy: each build hashes
 * a ring of points per node and sorts it) and rendezvous over more than 16 nodes. Rings
 * over 64 nodes and rendezvous over 256 are skipped: the code they run is the same, only
 * slower (a 2,000-node ketama ring takes half a second to build here); tests/test_partition*
 * and tests/test_ketama_* cover big sets. Input layout and checks:
 * tests/fuzz/partition_harness.h. Built and run by `make fuzz`; its corpus is
 * tests/fuzz/partition_slow/, replayed by tests/test_fuzz_corpus.c.
 */
#include "partition_harness.h"

#define FP_MAX_KETAMA     64  /* bigger rings are skipped */
#define FP_MAX_RENDEZVOUS 256 /* bigger sets are skipped */

static int fp_not_slow(const char *spec, uint32_t n)
{
    unsigned long nodes = fp_nodes(spec, n);
    if (fp_is_ketama(spec))
        return nodes > FP_MAX_KETAMA;
    if (fp_is_rendezvous(spec))
        return nodes <= FP_FAST_NODES || nodes > FP_MAX_RENDEZVOUS;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fp_test_one(fp_not_slow, data, size);
}
