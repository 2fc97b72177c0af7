/* fetch_test.c — host/fetch.c against a small HTTP server the test runs on
 * 127.0.0.1 in the same loop, with canned answers per path:
 *
 *   /ok        200 "hello" with X-Test        /echo    201 "METHOD|X-Custom|body"
 *   /stream    3 SSE chunks, 20 ms apart       /stall   headers + 1 chunk, then silence
 *   /hang      never answers                   /close   closes without answering
 *   /429       429 with Retry-After            /big     100 000-byte body
 *   /continue  100 Continue, then 200 */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "fetch.h"
#include "lp.h"

static int passed, failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
        }                                                                                          \
    } while (0)

static uv_loop_t loop;
static lp_fetch *fetch;
static char base[64]; /* http://127.0.0.1:PORT */

/* ---- the canned server -------------------------------------------------------- */

typedef struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* paces /stream */
    char in[16384];
    size_t len;
    int sent_chunks;
    int closed_handles; /* freed when both are closed */
    struct conn *next;
} conn;

static uv_tcp_t server;
static conn *conns;

static void conn_freed(uv_handle_t *h)
{
    conn *c = h->data;
    if (++c->closed_handles == 2) free(c);
}

static void conn_close(conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
    for (conn **pp = &conns; *pp != NULL; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    uv_close((uv_handle_t *)&c->tcp, conn_freed);
    uv_close((uv_handle_t *)&c->timer, conn_freed);
}

static void written(uv_write_t *w, int status)
{
    free(w->data);
    free(w);
}

static void send_str(conn *c, const char *s, size_t n)
{
    uv_write_t *w = malloc(sizeof(*w));
    char *copy = malloc(n);
    memcpy(copy, s, n);
    w->data = copy;
    uv_buf_t b = uv_buf_init(copy, (unsigned)n);
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, written);
}

static void send_text(conn *c, const char *s)
{
    send_str(c, s, strlen(s));
}

static void send_chunk(conn *c, const char *data)
{
    char out[256];
    int n = snprintf(out, sizeof(out), "%zx\r\n%s\r\n", strlen(data), data);
    send_str(c, out, (size_t)n);
}

static void stream_tick(uv_timer_t *t)
{
    conn *c = t->data;
    char data[32];
    snprintf(data, sizeof(data), "data: %d\n\n", ++c->sent_chunks);
    send_chunk(c, data);
    if (c->sent_chunks == 3) {
        send_text(c, "0\r\n\r\n");
        uv_timer_stop(t);
    }
}

static const char *header_value(const char *req, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    const char *p = strcasestr(req, name);
    if (p == NULL) return out;
    p += strlen(name);
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, "\r\n");
    snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), p);
    return out;
}

static void respond(conn *c, const char *req, size_t head_len, size_t body_len)
{
    char method[16], path[128];
    if (sscanf(req, "%15s %127s", method, path) != 2) return;
    if (strcmp(path, "/ok") == 0) {
        send_text(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Test:  yes \r\n"
                     "Content-Length: 5\r\n\r\nhello");
    } else if (strcmp(path, "/echo") == 0) {
        char custom[128], out[1024], body[512];
        header_value(req, "\r\nX-Custom:", custom, sizeof(custom));
        size_t n = body_len < sizeof(body) ? body_len : sizeof(body);
        memcpy(body, req + head_len, n);
        int h = snprintf(out, sizeof(out), "%s|%s|", method, custom);
        char head[128];
        int hl = snprintf(head, sizeof(head), "HTTP/1.1 201 Created\r\nContent-Length: %zu\r\n\r\n",
                          (size_t)h + n);
        send_str(c, head, (size_t)hl);
        send_str(c, out, (size_t)h);
        if (n > 0) send_str(c, body, n);
    } else if (strcmp(path, "/stream") == 0 || strcmp(path, "/stall") == 0) {
        send_text(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n");
        if (strcmp(path, "/stream") == 0) {
            c->sent_chunks = 0;
            uv_timer_start(&c->timer, stream_tick, 20, 20);
        } else {
            send_chunk(c, "data: first\n\n");
        }
    } else if (strcmp(path, "/hang") == 0) {
        /* say nothing */
    } else if (strcmp(path, "/close") == 0) {
        conn_close(c);
    } else if (strcmp(path, "/429") == 0) {
        send_text(c, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
                     "Content-Length: 2\r\n\r\n{}");
    } else if (strcmp(path, "/big") == 0) {
        static char big[100000];
        memset(big, 'x', sizeof(big));
        send_text(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
        send_str(c, big, sizeof(big));
    } else if (strcmp(path, "/continue") == 0) {
        send_text(c, "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
                     "HTTP/1.1 200 OK\r\nX-Final: 1\r\nContent-Length: 2\r\n\r\nok");
    } else {
        send_text(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    conn *c = h->data;
    *b = uv_buf_init(c->in + c->len, (unsigned)(sizeof(c->in) - c->len - 1));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->in[c->len] = '\0';
    char *end = strstr(c->in, "\r\n\r\n");
    if (end == NULL) return;
    size_t head_len = (size_t)(end - c->in) + 4;
    char cl[32];
    size_t body_len = (size_t)atol(header_value(c->in, "\r\nContent-Length:", cl, sizeof(cl)));
    if (c->len < head_len + body_len) return;
    respond(c, c->in, head_len, body_len);
    if (uv_is_closing((uv_handle_t *)&c->tcp)) return;
    size_t used = head_len + body_len; /* keep-alive: the next request follows */
    memmove(c->in, c->in + used, c->len - used);
    c->len -= used;
}

static void on_connection(uv_stream_t *srv, int status)
{
    conn *c = calloc(1, sizeof(*c));
    uv_tcp_init(&loop, &c->tcp);
    uv_timer_init(&loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    uv_accept(srv, (uv_stream_t *)&c->tcp);
    c->next = conns;
    conns = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static int server_start(void)
{
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&loop, &server);
    uv_tcp_bind(&server, (struct sockaddr *)&a, 0);
    uv_listen((uv_stream_t *)&server, 64, on_connection);
    int len = sizeof(a);
    uv_tcp_getsockname(&server, (struct sockaddr *)&a, &len);
    return ntohs(a.sin_port);
}

static void server_stop(void)
{
    while (conns != NULL)
        conn_close(conns);
    uv_close((uv_handle_t *)&server, NULL);
}

/* ---- client side helpers --------------------------------------------------------- */

static int guard_fired;
static void on_guard(uv_timer_t *t)
{
    guard_fired = 1;
}

/* Runs the loop until *flag is set; the guard only keeps a broken build from
 * hanging the suite. */
static int run_until(int *flag, int max_ms)
{
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    guard_fired = 0;
    uv_timer_start(&guard, on_guard, (uint64_t)max_ms, 0);
    while (!*flag && !guard_fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return *flag;
}

typedef struct outcome {
    int done;
    int status, err;
    char errmsg[256];
    char body[256];
    size_t body_len;
    int body_null;
    char headers[512]; /* "name=value;" in order */
    int chunks;
    char streamed[256];
    int head_status_at_first_chunk;
    char head_type_at_first_chunk[64];
    int cancel_in_chunk;
    lp_fetch_req *req;
} outcome;

static void headers_str(const lp_fetch_response *r, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < r->nheaders; i++) {
        size_t l = strlen(out);
        snprintf(out + l, size - l, "%s=%s;", r->headers[i].name, r->headers[i].value);
    }
}

static const char *find_header(const lp_fetch_response *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}

static void on_done(const lp_fetch_response *r, void *ud)
{
    outcome *o = ud;
    o->done++;
    o->status = r->status;
    o->err = r->err;
    snprintf(o->errmsg, sizeof(o->errmsg), "%s", r->errmsg);
    o->body_null = r->body == NULL;
    o->body_len = r->body_len;
    if (r->body != NULL && r->body_len < sizeof(o->body)) memcpy(o->body, r->body, r->body_len);
    headers_str(r, o->headers, sizeof(o->headers));
}

static void on_chunk(const lp_fetch_response *head, const char *data, size_t len, void *ud)
{
    outcome *o = ud;
    if (o->chunks++ == 0) {
        o->head_status_at_first_chunk = head->status;
        const char *ct = find_header(head, "content-type");
        snprintf(o->head_type_at_first_chunk, sizeof(o->head_type_at_first_chunk), "%s",
                 ct ? ct : "");
    }
    size_t l = strlen(o->streamed);
    snprintf(o->streamed + l, sizeof(o->streamed) - l, "%.*s", (int)len, data);
    if (o->cancel_in_chunk) lp_fetch_cancel(o->req);
}

static outcome *go(lp_fetch_options *opts, const char *path)
{
    static outcome o;
    char url[128];
    memset(&o, 0, sizeof(o));
    snprintf(url, sizeof(url), "%s%s", base, path);
    if (opts->url == NULL) opts->url = url;
    opts->on_done = on_done;
    opts->ud = &o;
    int rc = lp_fetch_start(fetch, opts, &o.req);
    CHECK(rc == 0);
    if (rc != 0) return &o;
    CHECK(o.done == 0); /* never inside the call */
    CHECK(run_until(&o.done, 10000));
    opts->url = NULL;
    return &o;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_resolver(void)
{
    CHECK(strcmp(lp_fetch_resolver(), "threaded") == 0);
}

static void test_get(void)
{
    lp_fetch_options opts = {0};
    outcome *o = go(&opts, "/ok");
    CHECK(o->done == 1 && o->err == 0 && o->status == 200);
    CHECK(o->body_len == 5 && memcmp(o->body, "hello", 5) == 0);
    CHECK(strstr(o->headers, "x-test=yes;") != NULL);
    CHECK(strstr(o->headers, "content-type=text/plain;") != NULL);

    /* Through the resolver, with a name. */
    char url[128];
    snprintf(url, sizeof(url), "http://localhost:%s/ok", strrchr(base, ':') + 1);
    opts.url = url;
    o = go(&opts, "");
    CHECK(o->err == 0 && o->status == 200);

    opts.method = "HEAD";
    o = go(&opts, "/ok");
    CHECK(o->err == 0 && o->status == 200 && o->body_len == 0 && !o->body_null);

    o = go(&(lp_fetch_options){0}, "/continue");
    CHECK(o->status == 200 && strcmp(o->body, "ok") == 0);
    CHECK(strcmp(o->headers, "x-final=1;content-length=2;") == 0);
}

static void test_methods_headers_body(void)
{
    const char *hdrs[] = {"X-Custom: v1", "Content-Type: application/octet-stream"};
    const char body[] = {'a', '\0', 'b'};
    lp_fetch_options opts = {
        .method = "POST", .headers = hdrs, .nheaders = 2, .body = body, .body_len = sizeof(body)};
    outcome *o = go(&opts, "/echo");
    CHECK(o->err == 0 && o->status == 201);
    CHECK(o->body_len == 11 && memcmp(o->body, "POST|v1|a\0b", 11) == 0);

    opts = (lp_fetch_options){.method = "DELETE"};
    o = go(&opts, "/echo");
    CHECK(o->status == 201 && strcmp(o->body, "DELETE||") == 0);
    opts = (lp_fetch_options){.method = "PUT", .body = "x", .body_len = 1};
    o = go(&opts, "/echo");
    CHECK(o->status == 201 && strcmp(o->body, "PUT||x") == 0);

    o = go(&(lp_fetch_options){0}, "/429");
    CHECK(o->err == 0 && o->status == 429 && strcmp(o->body, "{}") == 0);
    CHECK(strstr(o->headers, "retry-after=7;") != NULL);
}

static void test_invalid(void)
{
    outcome o;
    const char *evil[] = {"X-A: 1\r\nX-Injected: 1"};
    lp_fetch_options opts = {
        .url = "http://127.0.0.1/", .headers = evil, .nheaders = 1, .on_done = on_done, .ud = &o};
    CHECK(lp_fetch_start(fetch, &opts, NULL) == LP_EINVAL);
    opts = (lp_fetch_options){.url = "http://127.0.0.1/", .method = "GET /x", .on_done = on_done};
    CHECK(lp_fetch_start(fetch, &opts, NULL) == LP_EINVAL);
    opts = (lp_fetch_options){.url = "http://127.0.0.1/"};
    CHECK(lp_fetch_start(fetch, &opts, NULL) == LP_EINVAL); /* no on_done */

    opts = (lp_fetch_options){.url = "file:///etc/passwd"};
    outcome *r = go(&opts, "");
    CHECK(r->err == LP_EINVAL && r->status == 0 && r->errmsg[0] != '\0');
}

static void test_stream(void)
{
    lp_fetch_options opts = {.on_chunk = on_chunk};
    outcome *o = go(&opts, "/stream");
    CHECK(o->done == 1 && o->err == 0 && o->status == 200);
    CHECK(o->chunks >= 1);
    CHECK(strcmp(o->streamed, "data: 1\n\ndata: 2\n\ndata: 3\n\n") == 0);
    CHECK(o->head_status_at_first_chunk == 200);
    CHECK(strcmp(o->head_type_at_first_chunk, "text/event-stream") == 0);
    CHECK(o->body_null);
}

static void test_timeouts(void)
{
    lp_fetch_options opts = {.timeout_ms = 200};
    outcome *o = go(&opts, "/hang");
    CHECK(o->err == LP_ETIMEDOUT && o->status == 0 && o->errmsg[0] != '\0');

    opts = (lp_fetch_options){.timeout_ms = 30000, .read_timeout_ms = 150};
    o = go(&opts, "/hang");
    CHECK(o->err == LP_ETIMEDOUT && strstr(o->errmsg, "no data") != NULL);

    /* Silence in the middle of a stream. */
    opts = (lp_fetch_options){.timeout_ms = 30000, .read_timeout_ms = 150, .on_chunk = on_chunk};
    o = go(&opts, "/stall");
    CHECK(o->err == LP_ETIMEDOUT && o->status == 200 && o->chunks == 1);
    CHECK(strcmp(o->streamed, "data: first\n\n") == 0);

    /* A steady stream is not silence. */
    opts = (lp_fetch_options){.read_timeout_ms = 2000, .on_chunk = on_chunk};
    o = go(&opts, "/stream");
    CHECK(o->err == 0 && strlen(o->streamed) == 27);
}

static void test_cancel(void)
{
    /* From inside the chunk callback: nothing more arrives, on_done says why. */
    static outcome o;
    memset(&o, 0, sizeof(o));
    char url[128];
    snprintf(url, sizeof(url), "%s/stall", base);
    o.cancel_in_chunk = 1;
    lp_fetch_options opts = {.url = url, .on_chunk = on_chunk, .on_done = on_done, .ud = &o};
    CHECK(lp_fetch_start(fetch, &opts, &o.req) == 0);
    CHECK(run_until(&o.done, 10000));
    CHECK(o.err == LP_ECLOSED && strcmp(o.errmsg, "cancelled") == 0 && o.chunks == 1);

    /* Right after starting; on_done comes later, once. */
    memset(&o, 0, sizeof(o));
    snprintf(url, sizeof(url), "%s/hang", base);
    opts = (lp_fetch_options){.url = url, .on_done = on_done, .ud = &o};
    CHECK(lp_fetch_start(fetch, &opts, &o.req) == 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    lp_fetch_cancel(o.req);
    lp_fetch_cancel(o.req);
    CHECK(o.done == 0);
    CHECK(run_until(&o.done, 10000));
    CHECK(o.done == 1 && o.err == LP_ECLOSED);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(o.done == 1);
}

static void test_failures(void)
{
    outcome *o = go(&(lp_fetch_options){0}, "/close");
    CHECK(o->err == LP_EIO && o->status == 0);

    /* Nothing listens on a port we just released. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    lp_fetch_options opts = {.url = url};
    o = go(&opts, "");
    CHECK(o->err == LP_EUNAVAIL && o->errmsg[0] != '\0');

    opts = (lp_fetch_options){.max_body_bytes = 1000};
    o = go(&opts, "/big");
    CHECK(o->err == LP_ETOOBIG && o->status == 200);
    o = go(&(lp_fetch_options){0}, "/big");
    CHECK(o->err == 0 && o->body_len == 100000);
}

typedef struct many {
    int done, ok, all;
} many;

static void on_many(const lp_fetch_response *r, void *ud)
{
    many *m = ud;
    m->ok += r->err == 0 && r->status == 200 && r->body_len == 5;
    if (++m->done == 20) m->all = 1;
}

static void test_concurrent(void)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/ok", base);
    many m = {0, 0, 0};
    lp_fetch_options opts = {.url = url, .on_done = on_many, .ud = &m};
    for (int i = 0; i < 20; i++)
        CHECK(lp_fetch_start(fetch, &opts, NULL) == 0);
    /* and one slow stream alongside them */
    outcome slow;
    memset(&slow, 0, sizeof(slow));
    char surl[128];
    snprintf(surl, sizeof(surl), "%s/stream", base);
    lp_fetch_options sopts = {.url = surl, .on_chunk = on_chunk, .on_done = on_done, .ud = &slow};
    CHECK(lp_fetch_start(fetch, &sopts, NULL) == 0);
    CHECK(run_until(&m.all, 10000));
    CHECK(m.done == 20 && m.ok == 20);
    CHECK(run_until(&slow.done, 10000));
    CHECK(slow.err == 0 && strlen(slow.streamed) == 27);
}

static void test_close(void)
{
    outcome a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    char u1[128], u2[128];
    snprintf(u1, sizeof(u1), "%s/hang", base);
    snprintf(u2, sizeof(u2), "%s/stall", base);
    lp_fetch_options o1 = {.url = u1, .on_done = on_done, .ud = &a};
    lp_fetch_options o2 = {.url = u2, .on_chunk = on_chunk, .on_done = on_done, .ud = &b};
    CHECK(lp_fetch_start(fetch, &o1, NULL) == 0);
    CHECK(lp_fetch_start(fetch, &o2, NULL) == 0);
    CHECK(run_until(&b.chunks, 10000));
    lp_fetch_close(fetch);
    CHECK(a.done == 1 && a.err == LP_ECLOSED);
    CHECK(b.done == 1 && b.err == LP_ECLOSED);
    fetch = NULL;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    int port = server_start();
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
    CHECK(lp_fetch_open(&fetch, &loop, 10000) == 0);

    test_resolver();
    test_get();
    test_methods_headers_body();
    test_invalid();
    test_stream();
    test_timeouts();
    test_cancel();
    test_failures();
    test_concurrent();
    test_close();

    server_stop();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_alive(&loop) == 0);
    CHECK(uv_loop_close(&loop) == 0);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
