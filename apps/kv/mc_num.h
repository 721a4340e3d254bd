/*
 * Number parsing and printing for the memcached text protocol (apps/kv).
 *
 * memcached reads every number with strtoul/strtol/strtoull wrapped in its safe_strto*()
 * helpers: leading white space is skipped, a sign is accepted, at least one digit is needed,
 * and the digits must be followed by the end of the token or by a white-space byte. A minus
 * sign on an unsigned field is rejected when the result would be negative as a signed number.
 * These helpers reproduce that over a byte range (no NUL terminator needed), with one
 * deliberate difference: memcached silently truncates 64-bit results into its 32-bit fields
 * (flags, exptime, byte counts), where we reject values that do not fit in 32 bits. Within 32
 * bits a signed field wraps as in memcached: 4294967295 is -1, which is how libmemcached (and
 * so pylibmc) sends a negative expiration time.
 *
 * Pure functions; any thread.
 */
#ifndef MC_NUM_H
#define MC_NUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apps/common/outbuf.h"

/* Longest decimal uint64_t: 20 digits (printed with app_u64_dec). */
#define MC_U64_DIGITS APP_U64_DIGITS

static inline bool mc_isspace(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/*
 * Reads the magnitude and sign of [p, p+n) the way strtoull does. Returns false when there is
 * no digit, when the magnitude overflows 64 bits (ERANGE), or when the digits are followed by
 * a byte that is neither white space nor the end of the range.
 */
static inline bool mc_scan_number(const char *p, size_t n, uint64_t *mag, bool *neg)
{
    size_t i = 0;
    while (i < n && mc_isspace((unsigned char)p[i]))
        i++;
    *neg = false;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        *neg = p[i++] == '-';
    size_t first = i;
    uint64_t v = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (i == first)
        return false;
    if (i < n && !mc_isspace((unsigned char)p[i]))
        return false;
    *mag = v;
    return true;
}

/* memcached's safe_strtoull: unsigned 64-bit; "-N" only when -N is not negative as int64. */
static inline bool mc_parse_u64(const char *p, size_t n, uint64_t *out)
{
    uint64_t mag;
    bool neg;
    if (!mc_scan_number(p, n, &mag, &neg))
        return false;
    if (neg)
        mag = (uint64_t)0 - mag;
    if (neg && (int64_t)mag < 0)
        return false;
    *out = mag;
    return true;
}

/* memcached's safe_strtoul, but values above UINT32_MAX are rejected, not truncated. */
static inline bool mc_parse_u32(const char *p, size_t n, uint32_t *out)
{
    uint64_t v;
    if (!mc_parse_u64(p, n, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/*
 * memcached's safe_strtol into a 32-bit field: 2^31 .. 2^32-1 wrap to negative values as in
 * memcached; values that do not fit in 32 bits are rejected, not truncated.
 */
static inline bool mc_parse_i32(const char *p, size_t n, int32_t *out)
{
    uint64_t mag;
    bool neg;
    if (!mc_scan_number(p, n, &mag, &neg))
        return false;
    if (!neg && mag > (uint64_t)UINT32_MAX)
        return false;
    if (neg && mag > (uint64_t)INT32_MAX + 1)
        return false;
    *out = neg ? (int32_t)(0 - (int64_t)mag) : (int32_t)(uint32_t)mag;
    return true;
}

#endif
