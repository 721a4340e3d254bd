/*
 * sn-httpd GET /healthz: the health check load balancers and orchestrators poll. 200 "ok"
 * while the server takes work; 503 "stopping" once the reactor is stopping (sn_stopping), so
 * a balancer drains this instance before its listeners close.
 */
#include "apps/httpd/http_response.h"
#include "apps/httpd/httpd.h"

#include <string.h>

#define HEALTH_OK       "ok\n"
#define HEALTH_STOPPING "stopping\n"

int httpd_health(const char **body)
{
    bool stopping = sn_stopping();
    *body = stopping ? HEALTH_STOPPING : HEALTH_OK;
    return stopping ? 503 : 200;
}

void httpd_health_serve(struct httpd_conn *h, const struct http_request *req, bool head)
{
    struct httpd_core *hc = h->hc;
    const char *body;
    int status = httpd_health(&body);
    bool stopping = status != 200;
    httpd_count(hc->ctr, stopping ? HC_RESP_5XX : HC_RESP_2XX);
    char buf[512];
    struct http_response r = {
        .status = status,
        .content_type = "text/plain; charset=utf-8",
        .content_length = strlen(body),
        .keep_alive = req->keep_alive,
        .req_minor = req->minor,
        .extra = "Cache-Control: no-store\r\n",
    };
    int n = http_response_full(buf, sizeof buf, &r, hc->date.str, body, head);
    if (n > 0)
        httpd_write(h, buf, (size_t)n);
}
