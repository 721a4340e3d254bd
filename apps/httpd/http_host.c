/*
 * The Host value (and an absolute-form target's authority) as RFC 9112 3.2 wants it:
 * RFC 3986's  host [ ":" port ]  with
 *
 *   host        = IP-literal / IPv4address / reg-name
 *   IP-literal  = "[" ( IPv6address / IPvFuture ) "]"
 *   IPvFuture   = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
 *   reg-name    = *( unreserved / pct-encoded / sub-delims )
 *   port        = *DIGIT                        (here also: a value of at most 65535)
 *
 * An IPv4address needs no check of its own: its characters are all reg-name characters, and
 * RFC 3986 (3.2.2) reads a dotted string that is not a valid IPv4 address ("999.1.1.1") as a
 * reg-name. An empty host is valid (RFC 9112 3.2: the Host of a target without authority), so
 * is an empty port (RFC 3986 3.2.3). IPv6 zone identifiers (RFC 6874) are not accepted: they
 * have no meaning outside the client's host.
 */
#include "apps/httpd/http_parser.h"

#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_unreserved(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static bool is_sub_delim(char c)
{
    return c != '\0' && strchr("!$&'()*+,;=", c) != NULL;
}

/* Length of the reg-name at the start of p[0, n), or -1 for a bad pct-encoding. */
static long reg_name_len(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (p[i] == '%') {
            if (i + 2 >= n || !is_hex(p[i + 1]) || !is_hex(p[i + 2]))
                return -1;
            i += 3;
        } else if (is_unreserved(p[i]) || is_sub_delim(p[i])) {
            i++;
        } else {
            break;
        }
    }
    return (long)i;
}

/* port = *DIGIT, at most 65535 (leading zeros allowed, as RFC 3986 allows them). */
static bool port_valid(const char *p, size_t n)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
        if (v > 65535)
            return false;
    }
    return true;
}

/* IPv4address: four dec-octets (0-255, no leading zero), exactly p[0, n). */
static bool ipv4_valid(const char *p, size_t n)
{
    size_t i = 0;
    for (unsigned part = 0;; part++) {
        size_t d = 0;
        unsigned v = 0;
        while (i + d < n && d < 4 && is_digit(p[i + d]))
            v = v * 10 + (unsigned)(p[i + d++] - '0');
        if (d == 0 || d > 3 || v > 255 || (d > 1 && p[i] == '0'))
            return false;
        i += d;
        if (part == 3)
            return i == n;
        if (i == n || p[i] != '.')
            return false;
        i++;
    }
}

/*
 * IPv6address (RFC 3986 3.2.2 / RFC 4291 2.2): eight h16 groups of 1-4 hex digits separated
 * by ':', at most one "::" standing for one or more zero groups, and the last two groups
 * possibly written as an IPv4address.
 */
static bool ipv6_valid(const char *p, size_t n)
{
    size_t i = 0;
    unsigned groups = 0;
    bool gap = false;
    if (n >= 2 && p[0] == ':' && p[1] == ':') {
        gap = true;
        i = 2;
    }
    while (i < n) {
        size_t h = 0;
        while (i + h < n && h < 5 && is_hex(p[i + h]))
            h++;
        if (i + h < n && p[i + h] == '.') { /* ls32 as IPv4: it must end the address */
            if (!ipv4_valid(p + i, n - i))
                return false;
            groups += 2;
            break;
        }
        if (h == 0 || h > 4)
            return false;
        groups++;
        i += h;
        if (i == n)
            break;
        if (p[i++] != ':' || i == n) /* a separator, and never a single trailing ':' */
            return false;
        if (p[i] == ':') {
            if (gap)
                return false;
            gap = true;
            i++;
        }
    }
    return gap ? groups <= 7 : groups == 8;
}

/* IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ), exactly p[0, n). */
static bool ipvfuture_valid(const char *p, size_t n)
{
    if (n < 4 || (p[0] != 'v' && p[0] != 'V'))
        return false;
    size_t i = 1;
    while (i < n && is_hex(p[i]))
        i++;
    if (i == 1 || i >= n - 1 || p[i] != '.')
        return false;
    for (i++; i < n; i++)
        if (!is_unreserved(p[i]) && !is_sub_delim(p[i]) && p[i] != ':')
            return false;
    return true;
}

bool http_host_valid(const char *p, size_t n)
{
    size_t i;
    if (n && p[0] == '[') {
        const char *end = memchr(p, ']', n);
        if (!end)
            return false;
        size_t in = (size_t)(end - p) - 1;
        if (!ipv6_valid(p + 1, in) && !ipvfuture_valid(p + 1, in))
            return false;
        i = in + 2;
    } else {
        long r = reg_name_len(p, n);
        if (r < 0)
            return false;
        i = (size_t)r;
    }
    if (i == n)
        return true;
    return p[i] == ':' && port_valid(p + i + 1, n - i - 1);
}
