/*
 * Prometheus text format writer: see metrics_text.h. Output goes through a counting appender so
 * a too-small buffer still yields the size that is needed.
 */
#include "apps/httpd/metrics_text.h"
#include "apps/common/text.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

struct text {
    char *p;
    size_t len, cap; /* len keeps counting past cap */
};

static void put(struct text *t, const char *s, size_t n)
{
    if (t->len < t->cap) {
        size_t room = t->cap - t->len;
        memcpy(t->p + t->len, s, n < room ? n : room);
    }
    t->len += n;
}

static void put_str(struct text *t, const char *s)
{
    put(t, s, strlen(s));
}

static void put_u64(struct text *t, uint64_t v)
{
    char tmp[APP_U64_DIGITS];
    put(t, tmp, app_u64_dec(v, tmp));
}

/* HELP text escapes only backslash and line feed (the format's rule for HELP). */
static void put_help(struct text *t, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            put(t, "\\\\", 2);
        else if (*s == '\n')
            put(t, "\\n", 2);
        else
            put(t, s, 1);
    }
}

static bool name_valid(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == ':';
        if (!ok)
            return false;
    }
    return true;
}

static void put_family(struct text *t, const struct metrics_family *f, unsigned ncores)
{
    if (f->help) {
        put_str(t, "# HELP ");
        put_str(t, f->name);
        put(t, " ", 1);
        put_help(t, f->help);
        put(t, "\n", 1);
    }
    put_str(t, "# TYPE ");
    put_str(t, f->name);
    put_str(t, f->type == METRICS_COUNTER ? " counter\n" : " gauge\n");
    for (unsigned core = 0; core < ncores; core++) {
        put_str(t, f->name);
        put_str(t, "{core=\"");
        put_u64(t, core);
        put_str(t, "\"} ");
        put_u64(t, f->values[core]);
        put(t, "\n", 1);
    }
}

long metrics_text_format(char *buf, size_t cap, const struct metrics_family *fams, size_t n,
                         unsigned ncores)
{
    struct text t = {buf, 0, cap};
    for (size_t i = 0; i < n; i++)
        if (!name_valid(fams[i].name))
            return -EINVAL;
    for (size_t i = 0; i < n; i++)
        put_family(&t, &fams[i], ncores);
    if (cap)
        buf[t.len < cap ? t.len : cap - 1] = '\0';
    return (long)t.len;
}
