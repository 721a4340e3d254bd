/*
 * Replays every file of the fuzz corpora (tests/fuzz/<target>/, seeds and the regress-* inputs
 * that once made a fuzzer fail) through the very entry points `make fuzz` runs, so the normal
 * suite (and `make asan`, where ASan and UBSan watch the parsers) keeps every crash found by
 * fuzzing fixed. A broken invariant aborts inside the entry point, which fails this test.
 *
 * The libFuzzer files are compiled into this one test, each included with its entry point
 * renamed by the preprocessor (and fuzz_http.c's `check`, a name other files use too); the
 * targets that share a harness (tests/fuzz/mc_harness.h, partition_harness.h) share one copy.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LLVMFuzzerTestOneInput fuzz_http_one
#define check fuzz_http_check
#include "fuzz/fuzz_http.c"
#undef check
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_memcached_one
#include "fuzz/fuzz_memcached.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_memcached_long_one
#include "fuzz/fuzz_memcached_long.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_partition_one
#include "fuzz/fuzz_partition.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_partition_slow_one
#include "fuzz/fuzz_partition_slow.c"
#undef LLVMFuzzerTestOneInput

#include "reactor_util.h"

typedef int (*fuzz_entry)(const uint8_t *data, size_t size);

/* tests/fuzz/ of the source tree: beside the build dir (build-x/tests/test_fuzz_corpus), or
 * under the working directory (make test runs from the repository root). */
static void corpus_root(char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        snprintf(out, cap, "%s/../../tests/fuzz", dirname(self));
        if (access(out, R_OK | X_OK) == 0)
            return;
    }
    snprintf(out, cap, "tests/fuzz");
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Feeds every regular file of tests/fuzz/<target>/ to entry; returns how many (regress-* in
 * *nregress). */
static unsigned replay(const char *target, fuzz_entry entry, unsigned *nregress)
{
    char root[PATH_MAX], dir[PATH_MAX + 64], path[PATH_MAX + 400];
    corpus_root(root, sizeof root);
    snprintf(dir, sizeof dir, "%s/%s", root, target);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "corpus %s", dir);
    char **names = NULL;
    size_t count = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        names = realloc(names, (count + 1) * sizeof *names);
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, name_cmp); /* a stable order for the log */
    unsigned files = 0;
    *nregress = 0;
    for (size_t i = 0; i < count; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        FILE *f = NULL;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            f = fopen(path, "rb");
        if (f) {
            uint8_t *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
            size_t len = fread(buf, 1, (size_t)st.st_size, f);
            fclose(f);
            cr_assert_eq(len, (size_t)st.st_size, "read %s", path);
            /* An exact-size copy: ASan sees a read one byte past the input. */
            entry(buf, len);
            free(buf);
            files++;
            *nregress += strncmp(names[i], "regress-", 8) == 0;
        }
        free(names[i]);
    }
    free(names);
    return files;
}

static void replay_target(const char *target, fuzz_entry entry)
{
    unsigned regress;
    unsigned files = replay(target, entry, &regress);
    cr_log_info("fuzz corpus %s: %u files replayed (%u regress-*)", target, files, regress);
    cr_assert_gt(files, 0, "tests/fuzz/%s/ has inputs", target);
}

Test(fuzz_corpus, http, .timeout = 60)
{
    replay_target("http", fuzz_http_one);
}

Test(fuzz_corpus, memcached, .timeout = 60)
{
    replay_target("memcached", fuzz_memcached_one);
}

Test(fuzz_corpus, partition, .timeout = 60)
{
    replay_target("partition", fuzz_partition_one);
}

Test(fuzz_corpus, memcached_long, .timeout = 60)
{
    replay_target("memcached_long", fuzz_memcached_long_one);
}

Test(fuzz_corpus, partition_slow, .timeout = 60)
{
    replay_target("partition_slow", fuzz_partition_slow_one);
}

/* The regress-* inputs are in the corpora this test replays (so they are never lost). */
Test(fuzz_corpus, regressions_present, .timeout = 60)
{
    unsigned regress;
    replay("http", fuzz_http_one, &regress);
    cr_assert_geq(regress, 1, "tests/fuzz/http/regress-501-null-path.txt");
}
