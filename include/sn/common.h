/*
 * Common definitions shared by every libsn header: the export macro, cache-line size,
 * branch hints. Included by each public header; users need not include it directly.
 */
#ifndef SN_COMMON_H
#define SN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define SN_BEGIN_DECLS extern "C" {
#define SN_END_DECLS }
#else
#define SN_BEGIN_DECLS
#define SN_END_DECLS
#endif

/* Marks a function as part of the exported ABI (the library builds with -fvisibility=hidden). */
#define SN_API __attribute__((visibility("default")))

/*
 * Marks a function whose result must not be dropped: every function that returns a future
 * (a dropped future is leaked; hand it to sn_ignore when its outcome does not matter).
 */
#define SN_MUST_USE __attribute__((warn_unused_result))

/* Size of a cache line on the platforms libsn targets (x86-64, arm64 servers). */
#define SN_CACHELINE 64
#define SN_CACHE_ALIGNED __attribute__((aligned(SN_CACHELINE)))

/*
 * The object that embeds `ptr`, a pointer to its field `member` (a task, a timer, a list
 * node): SN_CONTAINER_OF(t, struct my_req, task) inside a task's function.
 */
#define SN_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define sn_likely(x) __builtin_expect(!!(x), 1)
#define sn_unlikely(x) __builtin_expect(!!(x), 0)

/*
 * Where libsn gets memory for structures that must live on a particular NUMA node (rings,
 * per-core pools). `alloc` returns `size` bytes aligned to SN_CACHELINE, or NULL; `free`
 * releases a block from `alloc` with the same size. `ctx` is passed through untouched.
 * A NULL allocator pointer wherever one is accepted means aligned_alloc/free.
 */
struct sn_allocator {
    void *(*alloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr, size_t size);
    void *ctx;
};

/* Spells a macro's value as a string literal (for SN_VERSION_STRING). */
#define SN__STRINGIFY(x) #x
#define SN__VERSION_STR(a, b, c) SN__STRINGIFY(a) "." SN__STRINGIFY(b) "." SN__STRINGIFY(c)

/*
 * Library version, written here only: the Makefile reads the three numbers for the library's
 * file names and sn.pc, and SN_VERSION_STRING ("0.1.0") is made from them.
 */
#define SN_VERSION_MAJOR 0
#define SN_VERSION_MINOR 1
#define SN_VERSION_PATCH 0
#define SN_VERSION_STRING SN__VERSION_STR(SN_VERSION_MAJOR, SN_VERSION_MINOR, SN_VERSION_PATCH)

SN_BEGIN_DECLS

/*
 * The version of the libsn the program runs with, as "MAJOR.MINOR.PATCH" (SN_VERSION_STRING
 * is the one it was compiled against). Any thread.
 */
SN_API const char *sn_version(void);

SN_END_DECLS

#endif
