/* ops.c — /healthz, /readyz, /metrics, /api/v1/openapi.json. */
#include "ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "lp.h"
#include "metrics.h"
#include "server.h"
#include "vm.h"

#define MAX_PROBES 8

typedef struct probe {
    const char *name;
    lp_probe_fn fn;
} probe;

/* Process-wide: one host per worker process. */
static probe probes[MAX_PROBES];
static int nprobes;
static lp_gauge_fn gauges[MAX_PROBES];
static int ngauges;
static char *openapi;
static size_t openapi_len;

int lp_ops_add_probe(lp_host *h, const char *name, lp_probe_fn fn)
{
    if (nprobes == MAX_PROBES) return LP_ENOMEM;
    probes[nprobes++] = (probe){name, fn};
    return 0;
}

int lp_ops_add_gauges(lp_host *h, lp_gauge_fn fn)
{
    if (ngauges == MAX_PROBES) return LP_ENOMEM;
    gauges[ngauges++] = fn;
    return 0;
}

static void respond_json(lp_request *req, int status, const char *body, size_t len)
{
    lp_header h = {"Content-Type", 12, "application/json", 16};
    lp_request_respond(req, status, &h, 1, body, len);
}

static void healthz(lp_host *h, lp_request *req)
{
    char *b = NULL;
    size_t bl = 0, bc = 0;
    char head[160];
    snprintf(head, sizeof(head),
             "{\"status\":\"ok\",\"pid\":%d,\"worker\":%d,\"generation\":%d,\"lastReloadError\":",
             (int)getpid(), h->worker_id, lp_vm_generation(h->vm));
    int rc = lp_buf_append(&b, &bl, &bc, head, strlen(head));
    const char *err = lp_vm_last_error(h->vm);
    if (err)
        rc |= lp_json_quote(&b, &bl, &bc, err, strlen(err));
    else
        rc |= lp_buf_append(&b, &bl, &bc, "null", 4);
    rc |= lp_buf_append(&b, &bl, &bc, "}", 1);
    if (rc == 0)
        respond_json(req, 200, b, bl);
    else
        lp_request_problem(req, 500, "internal_error", "Internal Server Error", NULL, NULL);
    free(b);
}

/* /readyz: every probe runs at once; the answer goes when the last reports. */
typedef struct ready_ctx {
    lp_host *host;
    lp_request *req;
    int pending;
    int ok[MAX_PROBES];
    struct ready_slot {
        struct ready_ctx *ctx;
        int i;
    } slots[MAX_PROBES];
} ready_ctx;

static void ready_finish(ready_ctx *c)
{
    char body[512];
    size_t off = 0;
    int all = lp_vm_generation(c->host->vm) > 0;
    off += (size_t)snprintf(body + off, sizeof(body) - off, "{\"checks\":{\"scripts\":%s",
                            all ? "true" : "false");
    for (int i = 0; i < nprobes; i++) {
        all &= c->ok[i];
        off += (size_t)snprintf(body + off, sizeof(body) - off, ",\"%s\":%s", probes[i].name,
                                c->ok[i] ? "true" : "false");
    }
    off += (size_t)snprintf(body + off, sizeof(body) - off, "},\"down\":[");
    int first = 1;
    if (lp_vm_generation(c->host->vm) == 0) {
        off += (size_t)snprintf(body + off, sizeof(body) - off, "\"scripts\"");
        first = 0;
    }
    for (int i = 0; i < nprobes; i++) {
        if (c->ok[i]) continue;
        off += (size_t)snprintf(body + off, sizeof(body) - off, "%s\"%s\"", first ? "" : ",",
                                probes[i].name);
        first = 0;
    }
    off += (size_t)snprintf(body + off, sizeof(body) - off, "],\"status\":\"%s\"}",
                            all ? "ready" : "unavailable");
    respond_json(c->req, all ? 200 : 503, body, off);
    free(c);
}

static void ready_probe_done(int ok, void *data)
{
    struct ready_slot *s = data;
    ready_ctx *c = s->ctx;
    c->ok[s->i] = ok;
    if (--c->pending == 0) ready_finish(c);
}

static void readyz(lp_host *h, lp_request *req)
{
    ready_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        lp_request_problem(req, 503, "unavailable", "Service Unavailable", NULL, NULL);
        return;
    }
    c->host = h;
    c->req = req;
    c->pending = nprobes + 1; /* +1 keeps c alive until every probe started */
    for (int i = 0; i < nprobes; i++) {
        c->slots[i] = (struct ready_slot){c, i};
        if (probes[i].fn(h, ready_probe_done, &c->slots[i]) != 0) {
            c->ok[i] = 0;
            c->pending--;
        }
    }
    if (--c->pending == 0) ready_finish(c);
}

static void metrics(lp_host *h, lp_request *req)
{
    char *b = NULL;
    size_t bl = 0, bc = 0;
    char line[512];
    lp_server_stats st;
    lp_server_stats_get(h->server, &st);
    int rc = lp_metrics_render(h->metrics, &b, &bl, &bc);
    snprintf(line, sizeof(line),
             "# TYPE lifeplan_connections_open gauge\nlifeplan_connections_open %llu\n"
             "# TYPE lifeplan_connections_total counter\nlifeplan_connections_total %llu\n"
             "# TYPE lifeplan_requests_active gauge\nlifeplan_requests_active %llu\n"
             "# TYPE lifeplan_script_generation gauge\nlifeplan_script_generation %d\n"
             "# TYPE lifeplan_lua_memory_kbytes gauge\nlifeplan_lua_memory_kbytes %zu\n"
             "# TYPE lifeplan_tasks gauge\nlifeplan_tasks %d\n",
             (unsigned long long)st.connections_open, (unsigned long long)st.connections_total,
             (unsigned long long)st.requests_active, lp_vm_generation(h->vm),
             lp_vm_lua_kbytes(h->vm), lp_vm_tasks(h->vm));
    rc |= lp_buf_append(&b, &bl, &bc, line, strlen(line));
    for (int i = 0; i < ngauges; i++)
        rc |= gauges[i](h, &b, &bl, &bc);
    lp_header hd = {"Content-Type", 12, "text/plain; version=0.0.4", 25};
    if (rc == 0)
        lp_request_respond(req, 200, &hd, 1, b, bl);
    else
        lp_request_problem(req, 500, "internal_error", "Internal Server Error", NULL, NULL);
    free(b);
}

void lp_ops_set_openapi(lp_host *h, const char *doc, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) return;
    memcpy(copy, doc, len);
    copy[len] = '\0';
    free(openapi);
    openapi = copy;
    openapi_len = len;
}

void lp_ops_close(lp_host *h)
{
    free(openapi);
    openapi = NULL;
    openapi_len = 0;
    nprobes = 0;
    ngauges = 0;
}

int lp_ops_handle(lp_host *h, lp_request *req)
{
    const char *p = req->path;
    if (p[0] != '/') return 0;
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (strcmp(p, "/healthz") == 0)
        req->route = "GET /healthz";
    else if (strcmp(p, "/readyz") == 0)
        req->route = "GET /readyz";
    else if (strcmp(p, "/metrics") == 0)
        req->route = "GET /metrics";
    else if (strcmp(p, "/api/v1/openapi.json") == 0)
        req->route = "GET /api/v1/openapi.json";
    else
        return 0;
    if (!get) {
        lp_header allow = {"Allow", 5, "GET, HEAD", 9};
        lp_request_problem(req, 405, "method_not_allowed", "Method Not Allowed", NULL, &allow);
        return 1;
    }
    switch (p[1]) {
    case 'h':
        healthz(h, req);
        break;
    case 'r':
        readyz(h, req);
        break;
    case 'm':
        metrics(h, req);
        break;
    default:
        if (openapi == NULL)
            lp_request_problem(req, 404, "not_found", "Not Found", "no OpenAPI document", NULL);
        else
            respond_json(req, 200, openapi, openapi_len);
    }
    return 1;
}
