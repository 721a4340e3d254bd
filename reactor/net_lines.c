/*
 * Line mode (ops->on_line, include/sn/net.h): the on_data of a connection that reads lines
 * and blocks. It works on the bytes libsn presents, in place: a whole line is given to
 * on_line straight from the receive buffer, and what is left (a line not yet ended, a block
 * not yet complete) is left unconsumed, so the receive path keeps it and presents it again
 * with the next bytes (reactor/net_recv.c), bounded by limits.input_max.
 *
 * A line is searched only within its first line_max + 2 bytes (the longest line plus
 * "\r\n"): past that without a "\n" it is too long, on_line gets -EMSGSIZE with its first
 * line_max bytes, and the splitter drops input up to the next "\n" (`skipping`), keeping
 * nothing, however long the line goes on.
 *
 * Between two lines (or blocks) the splitter stops when the app stops reading, closes, or
 * the connection goes over its output or reply-slot limits: the rest stays unconsumed and is
 * presented again when reading resumes.
 */
#include "reactor/net_internal.h"

#include <errno.h>
#include <string.h>

/* Drops input up to and including the next "\n"; returns the bytes dropped. */
static size_t skip_line(struct sn_conn *c, const char *p, size_t n)
{
    const char *nl = memchr(p, '\n', n);
    if (!nl)
        return n;
    c->skipping = false;
    return (size_t)(nl - p) + 1;
}

/* Gives one line (or reports a too long one); returns the bytes used, 0: not whole yet. */
static size_t one_line(struct sn_conn *c, const char *p, size_t n)
{
    size_t max = c->lim.line_max;
    size_t look = n < max + 2 ? n : max + 2;
    const char *nl = memchr(p, '\n', look);
    if (!nl) {
        if (n < max + 2)
            return 0; /* wait for the rest */
        c->skipping = true;
        c->ops->on_line(c, c->arg, p, max, -EMSGSIZE);
        return look;
    }
    size_t len = (size_t)(nl - p);
    size_t used = len + 1;
    if (len && p[len - 1] == '\r')
        len--;
    if (len > max)
        c->ops->on_line(c, c->arg, p, max, -EMSGSIZE);
    else
        c->ops->on_line(c, c->arg, p, len, 0);
    return used;
}

size_t sn__lines_feed(struct sn_conn *c, const char *data, size_t len)
{
    size_t used = 0;
    while (used < len && sn__conn_may_read(c)) {
        const char *p = data + used;
        size_t n = len - used, step;
        if (c->skipping) {
            step = skip_line(c, p, n);
        } else if (c->block_need) {
            if (n < c->block_need)
                break; /* gathered by the receive path until it is whole */
            step = c->block_need;
            c->block_need = 0;
            c->ops->on_block(c, c->arg, p, step);
        } else if (!(step = one_line(c, p, n))) {
            break;
        }
        used += step;
    }
    return used;
}

int sn_conn_read_block(struct sn_conn *c, size_t len)
{
    if (sn_core_id() != c->core)
        return -EXDEV;
    if (!c->ops || !c->ops->on_line || !c->ops->on_block || len == 0)
        return -EINVAL;
    if (len > c->lim.input_max)
        return -EMSGSIZE;
    c->block_need = len;
    return 0;
}

int sn_conn_may_read(const struct sn_conn *c)
{
    if (sn_core_id() != c->core)
        return -EXDEV;
    return sn__conn_may_read(c);
}
