/*
 * sn-httpd's health check (apps/httpd/healthz.c): GET /healthz answers 200 "ok" with
 * Cache-Control: no-store while the server runs, and is counted as a 2xx response; in
 * process, the answer turns to 503 "stopping" once the stop began (a request cannot be timed
 * into the instant between the stop and the closing of the connections from outside).
 */
#include "apps/httpd/httpd.h"
#include "httpd_util.h"

TestSuite(httpd_health, .init = setup_root, .fini = teardown, .timeout = 60);

Test(httpd_health, healthz_ok_while_running)
{
    struct resp r;
    cr_assert_eq(request("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    cr_expect_eq(r.body_len, 3);
    cr_expect(r.body_len == 3 && memcmp(r.body, "ok\n", 3) == 0, "body %.*s", (int)r.body_len,
              r.body);
    char v[128];
    cr_expect_str_eq(head_value(r.head, "Cache-Control", v, sizeof v), "no-store");
    free(r.body);
    cr_assert_eq(request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
    cr_expect_not_null(strstr(r.body, "httpd_responses_2xx_total"));
    free(r.body);
    cr_expect_eq(request("GET /healthzz HTTP/1.1\r\nHost: x\r\n\r\n", NULL), 404);
    stop_server_ok();
}

static int status_before, status_after;
static const char *body_after;

static struct sn_future *check_around_stop(void *arg)
{
    (void)arg;
    const char *body;
    status_before = httpd_health(&body);
    sn_stop(0);
    status_after = httpd_health(&body_after);
    return sn_when_stopped();
}

Test(httpd_health_stop, healthz_503_once_stopping)
{
    struct sn_config cfg;
    sn_config_init(&cfg);
    cfg.smp = 1;
    cfg.unpinned = true;
    cr_assert_eq(sn_run(&cfg, check_around_stop, NULL), 0);
    cr_expect_eq(status_before, 200);
    cr_expect_eq(status_after, 503);
    cr_expect_str_eq(body_after, "stopping\n");
}
