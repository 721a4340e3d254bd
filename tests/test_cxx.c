/*
 * The public headers in C++: tests/cxx_api.cc includes <sn.h> and is compiled by g++ with
 * -Wall -Wextra -Werror (a header that stops compiling as C++ fails the build). Here C checks
 * that C++ lays the public structs out as C does, and runs the inline ring paths and the
 * README's example compiled as C++.
 */
#include <criterion/criterion.h>
#include <sn.h>
#include <string.h>

#include "tests/cxx_api.h"

Test(cxx, struct_layouts_match_c)
{
#define SN_C_ONE(type) {#type, sizeof(struct type), _Alignof(struct type)},
    static const struct sn_cxx_layout c[] = {SN_CXX_LAYOUTS(SN_C_ONE)};
#undef SN_C_ONE
    enum { n = sizeof c / sizeof c[0] };
    struct sn_cxx_layout cxx[n];
    memset(cxx, 0, sizeof cxx);
    sn_cxx_layouts(cxx, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(cxx[i].name, c[i].name);
        cr_expect_eq(cxx[i].size, c[i].size, "struct %s: %zu bytes in C++, %zu in C", c[i].name,
                     cxx[i].size, c[i].size);
        cr_expect_eq(cxx[i].align, c[i].align, "struct %s: aligned to %zu in C++, %zu in C",
                     c[i].name, cxx[i].align, c[i].align);
    }
}

Test(cxx, ring_offsets_match_c)
{
    size_t cxx[4] = {0};
    sn_cxx_ring_offsets(cxx);
    cr_expect_eq(cxx[0], offsetof(struct sn_ring, prod));
    cr_expect_eq(cxx[1], offsetof(struct sn_ring, tail));
    cr_expect_eq(cxx[2], offsetof(struct sn_ring, cons));
    cr_expect_eq(cxx[3], offsetof(struct sn_ring, head));
}

Test(cxx, ring_round_trip)
{
    cr_assert_eq(sn_cxx_ring_round_trip(), 1000);
}

Test(cxx, readme_example_runs, .timeout = 60)
{
    char a0[] = "example", a1[] = "--smp", a2[] = "2", a3[] = "--unpinned";
    char *argv[] = {a0, a1, a2, a3, NULL};
    cr_assert_eq(sn_cxx_example_main(4, argv), 0);
}
