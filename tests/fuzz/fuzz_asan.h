/*
 * ASan's options for the fuzz targets that include this header (one definition per program:
 * the include guard keeps tests/test_fuzz_corpus.c, which includes every target, at one).
 *
 * The quarantine of freed memory is 16 MiB instead of 256: with 256 MiB every allocation of
 * a fuzz input lands on memory that was unmapped or never touched, and the page faults (and
 * their shadow) cost about a third of the time of targets that allocate per input. 16 MiB is
 * still hundreds of inputs' worth of frees, so a use after free within an input is found as
 * before. Without ASan (the normal test build) nothing calls this.
 */
#ifndef SN_FUZZ_ASAN_H
#define SN_FUZZ_ASAN_H

const char *__asan_default_options(void);

__attribute__((used, visibility("default"))) const char *__asan_default_options(void)
{
    return "quarantine_size_mb=16";
}

#endif
