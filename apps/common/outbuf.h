/*
 * The output-buffer writer of the sample apps: httpd's response heads, the Prometheus text
 * page and kv's memcached replies are all appended through it. Single-threaded: a buffer is
 * used by one thread at a time (any thread); nothing here is shared. Goes into libsnapps.a.
 *
 * A buffer is either growable (app_outbuf_init: the buffer mallocs and owns its bytes) or
 * fixed (app_outbuf_init_fixed: the caller's memory, never grown, never freed).
 *
 * The overflow rule, the same for every append below: an append adds all of its bytes or
 * none. When they do not fit (a fixed buffer is full: -ENOSPC; a growable one cannot grow:
 * -ENOMEM) it adds none, returns that error and records it in `err` if `err` holds none yet.
 * Later appends are tried as usual, so a writer of several pieces may check `err` once at the
 * end (the contents are then incomplete: discard them), and a writer whose output must be
 * whole per message reserves the message's full length first. `err` stays until
 * app_outbuf_clear. Bytes past `len` are unspecified.
 */
#ifndef SN_APPS_COMMON_OUTBUF_H
#define SN_APPS_COMMON_OUTBUF_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct app_outbuf {
    char *data; /* the output is data[0, len) */
    size_t len;
    size_t cap;
    int err;    /* 0, or the first failed append's error since init or clear */
    bool fixed; /* the caller's memory: never grown, never freed */
};

/* The most decimal digits a uint64_t has (18446744073709551615). */
#define APP_U64_DIGITS 20

/* Writes v in decimal to dst (room for APP_U64_DIGITS bytes, no NUL); returns the length. */
static inline size_t app_u64_dec(uint64_t v, char *dst)
{
    char tmp[APP_U64_DIGITS];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    return n;
}

/* An empty growable buffer; nothing is allocated until the first append. */
static inline void app_outbuf_init(struct app_outbuf *b)
{
    *b = (struct app_outbuf){0};
}

/* An empty fixed buffer over the caller's cap bytes at mem (mem may be NULL when cap is 0). */
static inline void app_outbuf_init_fixed(struct app_outbuf *b, void *mem, size_t cap)
{
    *b = (struct app_outbuf){.data = mem, .cap = mem ? cap : 0, .fixed = true};
}

/* Frees a growable buffer's bytes (a fixed one's stay the caller's); empty and reusable. */
void app_outbuf_free(struct app_outbuf *b);

/* Forgets the contents and the recorded error; keeps the memory. */
static inline void app_outbuf_clear(struct app_outbuf *b)
{
    b->len = 0;
    b->err = 0;
}

/* Slow paths of the inline appends below: growing, or recording the failure. */
char *app_outbuf_reserve_slow(struct app_outbuf *b, size_t n);
int app_outbuf_put_slow(struct app_outbuf *b, const void *p, size_t n);

/*
 * True when n bytes, 1 <= n, fit without growing. n = 0 takes the slow path, so the NULL
 * data of an empty growable buffer is never offset or copied to.
 */
static inline bool app_outbuf_fits(const struct app_outbuf *b, size_t n)
{
    return n - 1 < b->cap - b->len;
}

/* What an append that does not fit returns: -ENOSPC for a fixed buffer, else -ENOMEM. */
static inline int app_outbuf_overflow(const struct app_outbuf *b)
{
    return b->fixed ? -ENOSPC : -ENOMEM;
}

/*
 * Room for n >= 1 more bytes: returns where to write them, or NULL after the overflow rule
 * (nothing added; the error is app_outbuf_overflow(b)). Write at most n bytes there, then
 * app_outbuf_commit the count written.
 */
static inline char *app_outbuf_reserve(struct app_outbuf *b, size_t n)
{
    if (__builtin_expect(app_outbuf_fits(b, n), 1))
        return b->data + b->len;
    return app_outbuf_reserve_slow(b, n);
}

/* Adds n bytes written at the address app_outbuf_reserve returned (n at most what it got). */
static inline void app_outbuf_commit(struct app_outbuf *b, size_t n)
{
    b->len += n;
}

/* Appends n bytes from p. 0, or -ENOSPC / -ENOMEM by the overflow rule. */
static inline int app_outbuf_put(struct app_outbuf *b, const void *p, size_t n)
{
    if (__builtin_expect(!app_outbuf_fits(b, n), 0))
        return app_outbuf_put_slow(b, p, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* Appends a NUL-terminated string (without the NUL). Same result as app_outbuf_put. */
static inline int app_outbuf_str(struct app_outbuf *b, const char *s)
{
    return app_outbuf_put(b, s, strlen(s));
}

/* Appends v in decimal. Same result as app_outbuf_put. */
static inline int app_outbuf_u64(struct app_outbuf *b, uint64_t v)
{
    char tmp[APP_U64_DIGITS];
    return app_outbuf_put(b, tmp, app_u64_dec(v, tmp));
}

/* Appends printf-style text (no NUL). Same result as app_outbuf_put; -EINVAL for a bad format. */
int app_outbuf_printf(struct app_outbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int app_outbuf_vprintf(struct app_outbuf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#endif
