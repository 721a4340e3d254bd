/*
 * Keeps docs/API.md in step with the public headers. The Makefile regenerates the reference
 * into BUILD/gen/API.md with docs/gen_api.sh before this test is linked (and the script's
 * --threads report into BUILD/gen/api_threads.txt); the test fails when the committed copy
 * differs, or when an SN_API function's contract does not say which thread may call it.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SN_SRC_DIR
#error "the Makefile defines SN_SRC_DIR (the source tree) and SN_GEN_DIR (BUILD/gen)"
#endif

/* The whole file as a NUL-terminated string (NULL when it cannot be read); *len its size. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *bigger = realloc(buf, 2 * cap + 1);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

/* 1-based number of the first line where a and b differ, and that line of each. */
static unsigned first_difference(const char *a, const char *b, char *la, char *lb, size_t cap)
{
    unsigned line = 1;
    const char *sa = a, *sb = b;
    while (*a && *a == *b) {
        if (*a == '\n') {
            line++;
            sa = a + 1;
            sb = b + 1;
        }
        a++, b++;
    }
    snprintf(la, cap, "%.*s", (int)strcspn(sa, "\n"), sa);
    snprintf(lb, cap, "%.*s", (int)strcspn(sb, "\n"), sb);
    return line;
}

Test(api_doc, in_step_with_headers)
{
    size_t ncommitted, nfresh;
    char *committed = slurp(SN_SRC_DIR "/docs/API.md", &ncommitted);
    char *fresh = slurp(SN_GEN_DIR "/API.md", &nfresh);
    cr_assert_not_null(fresh, "cannot read %s (built by the Makefile)", SN_GEN_DIR "/API.md");
    cr_assert_not_null(committed, "docs/API.md is missing: run `make api-doc`");
    if (ncommitted != nfresh || memcmp(committed, fresh, nfresh) != 0) {
        char la[256], lb[256];
        unsigned line = first_difference(committed, fresh, la, lb, sizeof la);
        free(committed);
        free(fresh);
        cr_assert_fail("docs/API.md is out of step with the headers: run `make api-doc`.\n"
                       "First difference at line %u:\n  docs/API.md: %s\n  headers:     %s",
                       line, la, lb);
    }
    free(committed);
    free(fresh);
}

Test(api_doc, every_function_says_which_thread)
{
    size_t n;
    char *missing = slurp(SN_GEN_DIR "/api_threads.txt", &n);
    cr_assert_not_null(missing, "cannot read %s", SN_GEN_DIR "/api_threads.txt");
    char list[4096];
    snprintf(list, sizeof list, "%s", missing);
    free(missing);
    cr_assert_eq(n, 0,
                 "SN_API functions whose comment does not say which thread may call them (add "
                 "\"Any thread.\", \"Owner core only.\", ...):\n%s",
                 list);
}
