/*
 * The C++ half of tests/test_cxx.c: functions compiled as C++ (tests/cxx_api.cc, g++ with
 * -Wall -Wextra -Werror) from code that includes <sn.h>, called by the C test, which checks
 * that C++ sees the same struct layouts as C and that the inline hot paths and the README's
 * example behave the same when compiled as C++.
 */
#ifndef SN_TEST_CXX_API_H
#define SN_TEST_CXX_API_H

#include <sn.h>

SN_BEGIN_DECLS

/* Public structs that callers embed, fill or read: both languages must lay them out alike. */
#define SN_CXX_LAYOUTS(X)                                                                          \
    X(sn_allocator)                                                                                \
    X(sn_ring) X(sn_msg) X(sn_config) X(sn_task) X(sn_timer) X(sn_result) X(sn_file_stat)

struct sn_cxx_layout {
    const char *name;
    size_t size;
    size_t align;
};

/* Fills out[0..n) with each SN_CXX_LAYOUTS struct's size and alignment as C++ sees them. */
void sn_cxx_layouts(struct sn_cxx_layout *out, size_t n);

/* The offsets of sn_ring's prod, tail, cons and head, as C++ sees them. */
void sn_cxx_ring_offsets(size_t out[4]);

/*
 * Pushes 1000 numbered 24-byte messages through a ring of 8 slots with every producer and
 * consumer call (stage/flush, push, push_n; pop, pop_n, peek/consume), checking order and
 * the size queries on the way. Returns the number of messages that arrived in order, or a
 * negative errno from sn_ring_create.
 */
int sn_cxx_ring_round_trip(void);

/* docs/example.c compiled as C++: its main. */
int sn_cxx_example_main(int argc, char **argv);

SN_END_DECLS

#endif
