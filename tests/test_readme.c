/*
 * Compiles and runs the README's code (extracted by the Makefile) so it cannot rot: the API
 * tour, and the example program, which must also be docs/example.c word for word; the
 * complete server must be apps/keys/main.c word for word (tests/test_keys.c drives it).
 */
#include <criterion/criterion.h>
#include <sn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "readme_tour.inc"

/* The README's example program, with its main renamed so a test can call it. */
#define main readme_example_main
#include "readme_example.c"
#undef main

Test(readme, ring_tour)
{
    cr_assert_eq(tour_ring(), 285);
}

Test(readme, fiber_tour, .timeout = 60)
{
    cr_assert_eq(tour_fiber(), 14);
}

Test(readme, app_tour, .timeout = 60)
{
    cr_assert_eq(tour_app(), 0);
    cr_assert_eq(strncmp(greeting, "hello tour from core ", 21), 0, "got '%s'", greeting);
}

/* The whole file as a NUL-terminated string, or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n)
        buf[n] = '\0';
    else if (buf) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

Test(readme, example_is_docs_example)
{
    char *readme = slurp(SN_GEN_DIR "/readme_example.c");
    char *docs = slurp(SN_SRC_DIR "/docs/example.c");
    int same = readme && docs && strcmp(readme, docs) == 0;
    int empty = !readme || !readme[0];
    free(readme);
    free(docs);
    cr_assert(!empty, "README.md has no <!-- example:begin --> block");
    cr_assert(same, "README.md's example (between <!-- example:begin/end -->) differs from "
                    "docs/example.c: make them the same");
}

Test(readme, server_is_apps_keys)
{
    char *readme = slurp(SN_GEN_DIR "/readme_server.c");
    char *app = slurp(SN_SRC_DIR "/apps/keys/main.c");
    int same = readme && app && strcmp(readme, app) == 0;
    int empty = !readme || !readme[0];
    free(readme);
    free(app);
    cr_assert(!empty, "README.md has no <!-- server:begin --> block");
    cr_assert(same, "README.md's server (between <!-- server:begin/end -->) differs from "
                    "apps/keys/main.c: make them the same");
}

/*
 * Runs the example with stderr going to a temporary file, where no stall line may appear: the
 * stall detector once reported "core 1 stalled for 52.0 ms" for this tiny program when a core
 * was merely preempted (issue 16); it now needs that much CPU time.
 */
Test(readme, example_runs_without_stall_reports, .timeout = 60)
{
    char a0[] = "example", a1[] = "--smp", a2[] = "2", a3[] = "--unpinned";
    char *argv[] = {a0, a1, a2, a3, NULL};
    FILE *err = tmpfile();
    cr_assert_not_null(err);
    fflush(stderr);
    int saved = dup(2);
    cr_assert_geq(saved, 0);
    dup2(fileno(err), 2);
    int rc = readme_example_main(4, argv);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char text[4096] = "";
    rewind(err);
    text[fread(text, 1, sizeof text - 1, err)] = '\0';
    fclose(err);
    cr_assert_eq(rc, 0);
    cr_expect_null(strstr(text, "stalled"), "the example reported: %s", text);
}
