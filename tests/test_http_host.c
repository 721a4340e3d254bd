/*
 * http_host_valid (apps/httpd/http_host.c): RFC 3986 host [":" port] as RFC 9112 3.2 asks of a
 * Host value, case by case, and through http_parse_request (Host header and absolute-form
 * authority both answer 400 for an invalid one).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "apps/httpd/http_parser.h"

static const char *const valid[] = {
    "", /* empty host: allowed (RFC 9112 3.2) */
    "a",
    "example.com",
    "a:",  /* port = *DIGIT: may be empty */
    ":80", /* empty reg-name with a port */
    "a:0",
    "a:80",
    "a:65535",
    "a:0000065535", /* leading zeros: still 65535 */
    "127.0.0.1",
    "127.0.0.1:8080",
    "999.999.999.999", /* not an IPv4address, so a reg-name (RFC 3986 3.2.2) */
    "%41%62c",
    "a!$&'()*+,;=-._~0",
    "[::]",
    "[::1]",
    "[::1]:8080",
    "[1:2:3:4:5:6:7:8]",
    "[1:2:3:4:5:6:7::]",
    "[::2:3:4:5:6:7:8]",
    "[1::8]",
    "[fe80::1:2]",
    "[ABCD:ef01::]",
    "[::ffff:192.168.0.1]",
    "[1:2:3:4:5:6:1.2.3.4]",
    "[v1.a]",
    "[V1F.a:b!]",
};

static const char *const invalid[] = {
    "a:-1",
    "a:+1",
    "a:1x",
    "a: 1",
    "a:65536",
    "a:99999999999999999999999",
    "a:80:80",
    "a b",
    "a@b",
    "user@a:80",
    "a/b",
    "a?b",
    "a#b",
    "a\"b",
    "a<b",
    "%",
    "%4",
    "%zz",
    "a%4g",
    "[",
    "[]",
    "[::1",
    "::1", /* IPv6 without brackets: "::1" is no reg-name */
    "[::1]x",
    "[::1]:x",
    "[::1]:65536",
    "[:::]",
    "[:1]",
    "[1:]",
    "[1::2::3]",
    "[12345::]",
    "[g::]",
    "[1:2:3:4:5:6:7:8:9]",
    "[1:2:3:4:5:6:7]",     /* seven groups and no "::" */
    "[1:2:3:4:5:6:7:8::]", /* eight groups and a "::" */
    "[::1.2.3]",
    "[::1.2.3.256]",
    "[::01.2.3.4]",            /* dec-octet has no leading zero */
    "[::1.2.3.4:5]",           /* the IPv4 part must come last */
    "[1:2:3:4:5:6:7:1.2.3.4]", /* nine groups' worth */
    "[fe80::1%25eth0]",        /* zone identifiers: not accepted */
    "[v1]",
    "[v.a]",
    "[v1.]",
    "[vz.a]",
    "[v1.a/b]",
    "a]",
    "[::1]]",
};

Test(http_host, valid_hosts)
{
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        cr_expect(http_host_valid(valid[i], strlen(valid[i])), "\"%s\" is a valid host", valid[i]);
}

Test(http_host, invalid_hosts)
{
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        cr_expect(!http_host_valid(invalid[i], strlen(invalid[i])), "\"%s\" is not a valid host",
                  invalid[i]);
}

/* The length is honoured: bytes past it are never looked at. */
Test(http_host, length_bounds_the_scan)
{
    cr_expect(http_host_valid("a:80-", 4));
    cr_expect(http_host_valid("[::1]junk", 5));
    cr_expect(!http_host_valid("[::1]", 4));
    cr_expect(!http_host_valid("a%41", 3));
}

static int parse(const char *req, struct http_request *out)
{
    return http_parse_request(req, strlen(req), 0, NULL, out);
}

Test(http_host, parser_answers_400_for_a_bad_host)
{
    struct http_request r;
    char req[256];
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", invalid[i]);
        int rc = parse(req, &r);
        /* A few are already a syntax error of the header line ("a: 1" is fine there). */
        cr_expect(rc == -EBADMSG && r.status == 400, "Host: %s -> 400 (rc %d, status %d)",
                  invalid[i], rc, r.status);
    }
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", valid[i]);
        cr_expect_gt(parse(req, &r), 0, "Host: %s is served", valid[i]);
        cr_expect_eq(r.status, 0);
    }
}

Test(http_host, absolute_form_authority)
{
    struct http_request r;
    cr_expect_gt(parse("GET http://[::1]:8080/x HTTP/1.1\r\nHost: a\r\n\r\n", &r), 0);
    cr_expect_eq(r.host.len, 10);
    cr_expect_eq(memcmp(r.host.p, "[::1]:8080", 10), 0);
    cr_expect_eq(parse("GET http://a:-1/ HTTP/1.1\r\nHost: a\r\n\r\n", &r), -EBADMSG);
    cr_expect_eq(r.status, 400);
    cr_expect_eq(parse("GET http://a:65536/ HTTP/1.1\r\nHost: a\r\n\r\n", &r), -EBADMSG);
    cr_expect_eq(parse("GET http://[::1/ HTTP/1.1\r\nHost: a\r\n\r\n", &r), -EBADMSG);
    cr_expect_eq(parse("GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", &r), -EBADMSG);
}
