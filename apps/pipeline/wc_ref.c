/* Single-threaded reference word count (see wc_ref.h). */
#include "wc_ref.h"

#include "wc_token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ref_ctx {
    struct wc_table *t;
    int err;
};

static void ref_word(void *arg, const char *word, size_t len)
{
    struct ref_ctx *c = arg;
    int rc = wc_table_add(c->t, word, len, wc_hash(word, len), 1);
    if (rc < 0 && !c->err)
        c->err = rc;
}

int wc_ref_count(const char *buf, size_t len, struct wc_ref *r)
{
    memset(r, 0, sizeof *r);
    int rc = wc_table_init_for(&r->table, wc_table_guess(len));
    if (rc < 0)
        return rc;
    struct ref_ctx c = {.t = &r->table};
    wc_tokenize(buf, len, ref_word, &c);
    if (c.err)
        return c.err;
    return wc_table_items(&r->table, SIZE_MAX, &r->items, &r->n, &r->sum);
}

/* Reads the whole file into a malloc'd buffer. */
static int slurp(const char *path, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    size_t cap = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size : 0, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) {
            rc = -ENOMEM;
            break;
        }
        if (n == cap) { /* the file grew, or it is not a regular file */
            cap = cap ? cap * 2 : 65536;
            char *b = realloc(buf, cap + 1);
            if (!b)
                free(buf);
            buf = b;
            continue;
        }
        ssize_t k = read(fd, buf + n, cap - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = k < 0 ? -errno : 0;
            break;
        }
        n += (size_t)k;
    }
    close(fd);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

int wc_ref_count_file(const char *path, struct wc_ref *r, uint64_t *bytes)
{
    char *buf = NULL;
    size_t len = 0;
    memset(r, 0, sizeof *r);
    int rc = slurp(path, &buf, &len);
    if (rc < 0)
        return rc;
    *bytes = len;
    rc = wc_ref_count(buf, len, r);
    free(buf);
    return rc;
}

void wc_ref_free(struct wc_ref *r)
{
    free(r->items);
    wc_table_free(&r->table);
    memset(r, 0, sizeof *r);
}
