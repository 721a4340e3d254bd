/* CPU list parsing ("0-1,3", "0-7:2") for --cpuset: see reactor/topology.h. */
#include "reactor/topology.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>

/* Reads a decimal number at *p (no sign, no spaces); advances *p. -EINVAL when none,
 * -ERANGE when it reaches SN__CPU_LIMIT. */
static int read_number(const char **p, unsigned *out)
{
    const char *s = *p;
    unsigned long v = 0;

    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    while (isdigit((unsigned char)*s)) {
        v = v * 10 + (unsigned long)(*s++ - '0');
        if (v >= SN__CPU_LIMIT) {
            while (isdigit((unsigned char)*s))
                s++;
            *p = s;
            return -ERANGE;
        }
    }
    *p = s;
    *out = (unsigned)v;
    return 0;
}

static int fail(int err, char *msg, size_t len, const char *list, const char *what)
{
    if (msg && len)
        snprintf(msg, len, "bad CPU list '%s': %s", list, what);
    return err;
}

/* Parses one item "A", "A-B" or "A-B:S" at *p, calling set for each CPU; returns the count. */
static int parse_item(const char **p, void (*set)(void *, unsigned), void *arg)
{
    unsigned lo, hi, stride = 1;
    int r = read_number(p, &lo);

    if (r < 0)
        return r;
    hi = lo;
    if (**p == '-') {
        (*p)++;
        if ((r = read_number(p, &hi)) < 0)
            return r;
        if (hi < lo)
            return -EDOM; /* reversed range: reported as -EINVAL by the caller */
        if (**p == ':') {
            (*p)++;
            if ((r = read_number(p, &stride)) < 0)
                return r;
            if (stride == 0)
                return -EDOM;
        }
    }
    int n = 0;
    for (unsigned c = lo; c <= hi; c += stride, n++)
        set(arg, c);
    return n;
}

int sn__cpulist_parse(const char *s, void (*set)(void *arg, unsigned cpu), void *arg, char *err,
                      size_t errlen)
{
    const char *p = s;
    int total = 0;

    if (!s || !*s)
        return fail(-EINVAL, err, errlen, s ? s : "", "empty");
    for (;;) {
        int n = parse_item(&p, set, arg);
        if (n == -ERANGE) {
            char what[64];
            snprintf(what, sizeof what, "CPU numbers must be below %d", SN__CPU_LIMIT);
            return fail(-ERANGE, err, errlen, s, what);
        }
        if (n == -EDOM)
            return fail(-EINVAL, err, errlen, s, "reversed range or zero stride");
        if (n < 0)
            return fail(-EINVAL, err, errlen, s, "expected N, N-M or N-M:STRIDE, comma-separated");
        total += n;
        if (*p == '\0')
            return total;
        if (*p != ',')
            return fail(-EINVAL, err, errlen, s, "expected N, N-M or N-M:STRIDE, comma-separated");
        p++;
    }
}
