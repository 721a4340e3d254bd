/* Compiles and runs the API tour from README.md (extracted by the Makefile) so it cannot rot. */
#include <criterion/criterion.h>
#include <sn.h>
#include <stdio.h>

#include "readme_tour.inc"

Test(readme, ring_tour)
{
    cr_assert_eq(tour_ring(), 285);
}
