/* Small text helpers shared by the sample servers' output code (httpd, kv). Any thread. */
#ifndef SN_APPS_COMMON_TEXT_H
#define SN_APPS_COMMON_TEXT_H

#include <stddef.h>
#include <stdint.h>

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

#endif
