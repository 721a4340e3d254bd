/* The apps' output-buffer writer: see outbuf.h. */
#include "apps/common/outbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define OUTBUF_MIN 1024 /* first allocation of a growable buffer */

void app_outbuf_free(struct app_outbuf *b)
{
    if (!b->fixed) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
    app_outbuf_clear(b);
}

/* The overflow rule's bookkeeping: the first error is kept. */
static int fail(struct app_outbuf *b, int err)
{
    if (!b->err)
        b->err = err;
    return err;
}

/* Makes room for n more bytes: 0, or the error (recorded). */
static int make_room(struct app_outbuf *b, size_t n)
{
    if (n <= b->cap - b->len)
        return 0;
    if (b->fixed || n > SIZE_MAX / 2 - b->len)
        return fail(b, app_outbuf_overflow(b));
    size_t cap = b->cap ? b->cap : OUTBUF_MIN;
    while (cap - b->len < n)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return fail(b, app_outbuf_overflow(b));
    b->data = p;
    b->cap = cap;
    return 0;
}

char *app_outbuf_reserve_slow(struct app_outbuf *b, size_t n)
{
    if (n == 0) /* nothing to write, and possibly nowhere: callers reserve n >= 1 */
        n = 1;
    return make_room(b, n) ? NULL : b->data + b->len;
}

int app_outbuf_put_slow(struct app_outbuf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = make_room(b, n);
    if (rc)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* A fixed buffer's text of exactly its room: vsnprintf would cut the last byte for its NUL. */
static int put_exact(struct app_outbuf *b, size_t n, const char *fmt, va_list ap)
{
    char *tmp = malloc(n + 1);
    if (!tmp)
        return fail(b, -ENOMEM);
    vsnprintf(tmp, n + 1, fmt, ap);
    memcpy(b->data + b->len, tmp, n);
    free(tmp);
    return 0;
}

int app_outbuf_vprintf(struct app_outbuf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    size_t room = b->cap - b->len;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    int rc = 0;
    if (n < 0)
        rc = fail(b, -EINVAL);
    else if (n > 0 && (size_t)n >= room && (rc = make_room(b, (size_t)n + !b->fixed)) == 0) {
        if (b->fixed) /* n == room */
            rc = put_exact(b, (size_t)n, fmt, again);
        else
            vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
    }
    va_end(again);
    if (!rc)
        b->len += (size_t)n;
    return rc;
}

int app_outbuf_printf(struct app_outbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = app_outbuf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}
