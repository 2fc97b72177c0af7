/* server.c — TCP listener, connections, llhttp parsing, limits, writes.
 *
 * A connection parses one request at a time: on_message_complete pauses the
 * parser, the request is handed to the handler, and the bytes that follow
 * (a pipelined request) wait in conn->in until the answer is written. That
 * keeps responses in order without a per-connection response queue. While a
 * request is in flight the connection keeps reading (so a client that goes
 * away is noticed) up to a bounded backlog, then stops reading. */
#include "server.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <llhttp.h>
#include <sodium.h>

#include "log.h"
#include "lp.h"
#include "metrics.h"

enum conn_state {
    CONN_IDLE,     /* waiting for the first byte of a request (keep-alive) */
    CONN_HEADERS,  /* reading the request line and headers                 */
    CONN_BODY,     /* reading the body                                     */
    CONN_HANDLING, /* the request is with the handler                      */
};

typedef struct hdr_off {
    size_t name_off, name_len, value_off, value_len;
} hdr_off;

struct lp_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;   /* armed for timer_due; see conn_deadline */
    uint64_t deadline;  /* uv_now ms when the current phase times out, 0 = none */
    uint64_t timer_due; /* when the timer fires, 0 when it is not armed       */
    lp_server *srv;
    llhttp_t parser;
    char *in; /* received bytes not yet parsed                             */
    size_t in_len, in_cap;
    lp_request *req;    /* the request being parsed                         */
    lp_request *active; /* the request with the handler                     */
    enum conn_state state;
    size_t header_bytes;
    size_t url_off, url_len;
    hdr_off *hoffs;
    int nhoffs, hoffs_cap;
    int in_value; /* last header callback was a value                      */
    int err_status;
    const char *err_code, *err_title;
    int closing;  /* uv_close called                                    */
    int shutting; /* no more requests: close after the current answer   */
    int reading;
    int in_process; /* inside process(): do not re-enter                  */
    int open_handles;
    char peer[64]; /* the client's address, looked up once ("" until then) */
    lp_conn *next, *prev;
};

struct lp_server {
    uv_loop_t *loop;
    const lp_config *cfg;
    lp_metrics *metrics;
    uv_tcp_t listener;
    int listening;
    int closing;
    lp_server_handler handler;
    void *data;
    llhttp_settings_t settings;
    lp_conn *conns; /* every open connection                                */
    lp_server_stats stats;
    uint64_t id_prefix; /* random, per worker: request ids are unique         */
    uint64_t id_seq;
    char date[40];
    uint64_t date_at;
    int port;
};

static void conn_close(lp_conn *c);
static void process(lp_conn *c);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ---- small helpers ---------------------------------------------------- */

int lp_json_quote(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (lp_buf_append(buf, len, cap, "\"", 1)) return LP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[7];
        size_t el = 0;
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            el = 2;
        } else if (ch < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            el = 6;
        }
        int rc =
            el ? lp_buf_append(buf, len, cap, esc, el) : lp_buf_append(buf, len, cap, s + i, 1);
        if (rc) return rc;
    }
    return lp_buf_append(buf, len, cap, "\"", 1);
}

const char *lp_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status < 400 ? "OK" : "Error";
    }
}

static const char *http_date(lp_server *s)
{
    uint64_t now = uv_now(s->loop) / 1000;
    if (now != s->date_at || s->date[0] == '\0') {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_at = now;
    }
    return s->date;
}

/* Writes v as `digits` lowercase hex digits (the low ones). */
static void put_hex(char *out, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        out[i] = hex[v & 15];
}

/* Decimal digits of v into out (room for 20); returns how many. */
static size_t put_dec(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* 12 hex digits of the worker's prefix and 8 of a sequence: 20 characters
 * (the hot path formats them by hand rather than through snprintf). */
static void make_request_id(lp_server *s, char *out, size_t size)
{
    if (size < 21) {
        if (size) out[0] = '\0';
        return;
    }
    put_hex(out, s->id_prefix & 0xffffffffffffULL, 12);
    put_hex(out + 12, ++s->id_seq & 0xffffffffULL, 8);
    out[20] = '\0';
}

/* A client-sent X-Request-Id is echoed only if it is short and plain. */
static int request_id_ok(const char *v, size_t n)
{
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)v[i]) && v[i] != '-' && v[i] != '_' && v[i] != '.') return 0;
    return 1;
}

const char *lp_request_header(const lp_request *req, const char *name, size_t *len)
{
    for (int i = 0; i < req->nheaders; i++) {
        const lp_header *h = &req->headers[i];
        if (strlen(name) == h->name_len && strncasecmp(h->name, name, h->name_len) == 0) {
            if (len) *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

int lp_request_peer(const lp_request *req, char *buf, size_t len)
{
    lp_conn *c = req->conn;
    if (c == NULL || len == 0) return LP_ECLOSED;
    if (c->peer[0] == '\0') { /* once per connection: a syscall per request adds up */
        struct sockaddr_storage addr;
        int alen = sizeof(addr);
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&addr, &alen) != 0) return LP_EIO;
        if (lp_ip_name((struct sockaddr *)&addr, c->peer, sizeof(c->peer)) != 0) {
            c->peer[0] = '\0';
            return LP_EIO;
        }
    }
    if (strlen(c->peer) >= len) return LP_EIO;
    strcpy(buf, c->peer);
    return 0;
}

static void request_free(lp_request *req)
{
    if (req == NULL) return;
    free(req->hbuf);
    free(req->headers);
    free(req->body);
    free(req);
}

/* ---- writing ---------------------------------------------------------- */

typedef struct write_req {
    uv_write_t w;
    char *buf;
} write_req;

static void on_write(uv_write_t *w, int status)
{
    write_req *wr = (write_req *)w;
    lp_conn *c = w->handle->data;
    free(wr->buf);
    free(wr);
    if (status < 0) conn_close(c);
}

/* Takes ownership of buf. */
static int conn_write(lp_conn *c, char *buf, size_t len)
{
    if (c == NULL || c->closing) {
        free(buf);
        return LP_ECLOSED;
    }
    write_req *wr = malloc(sizeof(*wr));
    if (wr == NULL) {
        free(buf);
        return LP_ENOMEM;
    }
    wr->buf = buf;
    uv_buf_t b = uv_buf_init(buf, (unsigned)len);
    /* Write at once when nothing is queued: uv_write would also finish in
     * its callback next loop turn and re-arm the socket in epoll. */
    int sent = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (sent == (int)len) {
        free(buf);
        free(wr);
        return 0;
    }
    if (sent > 0) b = uv_buf_init(buf + sent, (unsigned)(len - (size_t)sent));
    int rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(buf);
        free(wr);
        conn_close(c);
        return LP_ECLOSED;
    }
    return 0;
}

static void on_shutdown(uv_shutdown_t *sh, int status)
{
    lp_conn *c = sh->handle->data;
    free(sh);
    conn_close(c);
}

/* Closes the connection once queued writes are flushed. */
static void conn_end(lp_conn *c)
{
    if (c->closing) return;
    c->shutting = 1;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    uv_shutdown_t *sh = malloc(sizeof(*sh));
    if (sh == NULL || uv_shutdown(sh, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        free(sh);
        conn_close(c);
    }
}

/* A response header line from a script: it must not smuggle a second one. */
static int header_ok(const lp_header *h)
{
    return !memchr(h->value, '\r', h->value_len) && !memchr(h->value, '\n', h->value_len) &&
           !memchr(h->name, '\r', h->name_len) && !memchr(h->name, '\n', h->name_len);
}

#define PUT(at, s, n)  (memcpy(at, s, n), at += (n))
#define PUT_LIT(at, s) PUT(at, s, sizeof(s) - 1)

/* Appends the response head: its size is counted first, so the buffer
 * grows at most once and every piece is one memcpy. */
static int build_head(lp_request *req, lp_server *s, int status, const lp_header *hdrs, int n,
                      int chunked, size_t content_length, int closing, char **out, size_t *outlen,
                      size_t *outcap)
{
    char code[24], clen[24];
    const char *reason = lp_http_reason(status), *date = http_date(s);
    size_t cw = put_dec(code, (uint64_t)(status > 0 ? status : 0)), lw = 0;
    size_t rl = strlen(reason), dl = strlen(date), il = strlen(req->id);
    int has_length = !chunked && status != 204 && status != 304;
    if (has_length) lw = put_dec(clen, content_length);
    size_t need = sizeof("HTTP/1.1  \r\nServer: lifeplan\r\nDate: \r\nX-Request-Id: \r\n") - 1 +
                  cw + rl + dl + il + sizeof("\r\n") - 1;
    for (int i = 0; i < n; i++)
        need += hdrs[i].name_len + hdrs[i].value_len + 4;
    need += chunked      ? sizeof("Transfer-Encoding: chunked\r\n") - 1
            : has_length ? sizeof("Content-Length: \r\n") - 1 + lw
                         : 0;
    if (closing) need += sizeof("Connection: close\r\n") - 1;
    char *at = lp_buf_reserve(out, outlen, outcap, need), *start = at;
    if (at == NULL) return LP_ENOMEM;
    PUT_LIT(at, "HTTP/1.1 ");
    PUT(at, code, cw);
    PUT_LIT(at, " ");
    PUT(at, reason, rl);
    PUT_LIT(at, "\r\nServer: lifeplan\r\nDate: ");
    PUT(at, date, dl);
    PUT_LIT(at, "\r\nX-Request-Id: ");
    PUT(at, req->id, il);
    PUT_LIT(at, "\r\n");
    for (int i = 0; i < n; i++) {
        if (!header_ok(&hdrs[i])) continue;
        PUT(at, hdrs[i].name, hdrs[i].name_len);
        PUT_LIT(at, ": ");
        PUT(at, hdrs[i].value, hdrs[i].value_len);
        PUT_LIT(at, "\r\n");
    }
    if (chunked) {
        PUT_LIT(at, "Transfer-Encoding: chunked\r\n");
    } else if (has_length) {
        PUT_LIT(at, "Content-Length: ");
        PUT(at, clen, lw);
        PUT_LIT(at, "\r\n");
    }
    if (closing) PUT_LIT(at, "Connection: close\r\n");
    PUT_LIT(at, "\r\n");
    *at = '\0';
    *outlen += (size_t)(at - start);
    return 0;
}

static int conn_should_close(lp_conn *c, lp_request *req)
{
    return c == NULL || !req->keep_alive || c->shutting || c->srv->closing || !c->srv->listening;
}

/* The request is answered: record it, free it, and let the connection go on. */
static void request_done(lp_request *req)
{
    lp_conn *c = req->conn;
    lp_server *s = req->server;
    double ms = lp_now_ms() - req->start_ms;
    s->stats.requests_active--;
    if (s->metrics) lp_metrics_observe(s->metrics, req->route, req->status, ms);
    lp_log_request(req->method, req->path, req->status, ms, req->id);
    int close_after = conn_should_close(c, req);
    request_free(req);
    if (c == NULL) return;
    c->active = NULL;
    if (close_after) {
        conn_end(c);
        return;
    }
    c->state = CONN_IDLE;
    process(c);
}

void lp_request_respond(lp_request *req, int status, const lp_header *hdrs, int nhdrs,
                        const char *body, size_t len)
{
    lp_conn *c = req->conn;
    req->status = status;
    if (status == 204 || status == 304) len = 0;
    if (c != NULL) {
        /* one allocation: the head is a few hundred bytes plus the headers */
        size_t ocap = 384 + (req->head ? 0 : len);
        for (int i = 0; i < nhdrs; i++)
            ocap += hdrs[i].name_len + hdrs[i].value_len + 4;
        char *out = malloc(ocap);
        size_t olen = 0;
        if (out == NULL) ocap = 0;
        int closing = conn_should_close(c, req);
        if (build_head(req, req->server, status, hdrs, nhdrs, 0, len, closing, &out, &olen,
                       &ocap) == 0 &&
            (req->head || len == 0 || lp_buf_append(&out, &olen, &ocap, body, len) == 0))
            conn_write(c, out, olen);
        else
            free(out);
    }
    request_done(req);
}

void lp_request_problem(lp_request *req, int status, const char *code, const char *title,
                        const char *detail, const lp_header *extra)
{
    char *b = NULL;
    size_t bl = 0, bc = 0;
    char num[32];
    int w = snprintf(num, sizeof(num), "%d", status);
    int rc = lp_buf_append(&b, &bl, &bc, "{\"type\":\"about:blank\",\"title\":", 30);
    rc |= lp_json_quote(&b, &bl, &bc, title, strlen(title));
    rc |= lp_buf_append(&b, &bl, &bc, ",\"status\":", 10);
    rc |= lp_buf_append(&b, &bl, &bc, num, (size_t)w);
    rc |= lp_buf_append(&b, &bl, &bc, ",\"code\":", 8);
    rc |= lp_json_quote(&b, &bl, &bc, code, strlen(code));
    if (detail) {
        rc |= lp_buf_append(&b, &bl, &bc, ",\"detail\":", 10);
        rc |= lp_json_quote(&b, &bl, &bc, detail, strlen(detail));
    }
    rc |= lp_buf_append(&b, &bl, &bc, ",\"requestId\":", 13);
    rc |= lp_json_quote(&b, &bl, &bc, req->id, strlen(req->id));
    rc |= lp_buf_append(&b, &bl, &bc, "}", 1);
    lp_header h[2] = {{"Content-Type", 12, "application/problem+json", 24}};
    int n = 1;
    if (extra) h[n++] = *extra;
    lp_request_respond(req, status, h, n, rc ? "" : b, rc ? 0 : bl);
    free(b);
}

int lp_request_stream_start(lp_request *req, int status, const lp_header *hdrs, int nhdrs)
{
    lp_conn *c = req->conn;
    req->status = status;
    req->streaming = 1;
    if (c == NULL) return LP_ECLOSED;
    char *out = NULL;
    size_t olen = 0, ocap = 0;
    if (build_head(req, req->server, status, hdrs, nhdrs, 1, 0, conn_should_close(c, req), &out,
                   &olen, &ocap) != 0) {
        free(out);
        return LP_ENOMEM;
    }
    return conn_write(c, out, olen);
}

int lp_request_stream_write(lp_request *req, const char *data, size_t len)
{
    lp_conn *c = req->conn;
    if (c == NULL || c->closing) return LP_ECLOSED;
    if (len == 0) return 0; /* an empty chunk would end the body */
    char head[24];
    int w = snprintf(head, sizeof(head), "%zx\r\n", len);
    char *out = malloc((size_t)w + len + 2);
    if (out == NULL) return LP_ENOMEM;
    memcpy(out, head, (size_t)w);
    memcpy(out + w, data, len);
    memcpy(out + w + len, "\r\n", 2);
    return conn_write(c, out, (size_t)w + len + 2);
}

void lp_request_finish(lp_request *req)
{
    if (!req->streaming) {
        lp_request_problem(req, 500, "internal_error", "Internal Server Error", NULL, NULL);
        return;
    }
    if (req->conn != NULL) {
        char *end = malloc(5);
        if (end) {
            memcpy(end, "0\r\n\r\n", 5);
            conn_write(req->conn, end, 5);
        }
    }
    request_done(req);
}

/* ---- timeouts --------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

/* The timer is armed at most `shortest` ahead (the least of the three
 * timeouts), so a later deadline — every request moves it forward — changes
 * a field and no timer: the timer fires, finds the deadline still ahead and
 * re-arms for the rest. Only a sooner one re-arms it at once. */
static uint64_t shortest(const lp_config *cfg)
{
    int ms = cfg->header_timeout_ms;
    if (cfg->body_timeout_ms < ms) ms = cfg->body_timeout_ms;
    if (cfg->keepalive_timeout_ms < ms) ms = cfg->keepalive_timeout_ms;
    return (uint64_t)ms;
}

static void arm(lp_conn *c, uint64_t now)
{
    uint64_t ms = c->deadline - now, cap = shortest(c->srv->cfg);
    if (ms > cap) ms = cap;
    c->timer_due = now + ms;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* The current phase times out in ms (0: it does not, the handler has it). */
static void conn_deadline(lp_conn *c, int ms)
{
    if (ms <= 0) {
        c->deadline = 0; /* an armed timer fires and finds nothing due */
        return;
    }
    uint64_t now = uv_now(c->srv->loop);
    c->deadline = now + (uint64_t)ms;
    if (c->timer_due == 0 || c->timer_due > c->deadline) arm(c, now);
}

/* ---- connection-level errors ------------------------------------------ */

/* Answers a request that never reached the handler and closes. */
static void conn_fail(lp_conn *c, int status, const char *code, const char *title)
{
    lp_request *req = c->req;
    c->req = NULL;
    if (req == NULL) {
        req = calloc(1, sizeof(*req));
        if (req == NULL) {
            conn_close(c);
            return;
        }
        req->server = c->srv;
        req->start_ms = lp_now_ms();
        make_request_id(c->srv, req->id, sizeof(req->id));
        c->srv->stats.requests_total++;
    }
    if (req->path == NULL) req->path = "";
    if (req->method[0] == '\0') snprintf(req->method, sizeof(req->method), "-");
    req->conn = c;
    req->keep_alive = 0;
    req->route = "-";
    c->shutting = 1;
    c->srv->stats.requests_active++;
    c->active = req;
    conn_deadline(c, 0);
    lp_request_problem(req, status, code, title, NULL, NULL);
}

/* ---- llhttp callbacks ------------------------------------------------- */

static lp_conn *conn_of(llhttp_t *p)
{
    return p->data;
}

static int header_budget(lp_conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->srv->cfg->max_header_bytes) {
        c->err_status = 431;
        c->err_code = "header_too_large";
        c->err_title = "Request Header Fields Too Large";
        return -1;
    }
    return 0;
}

static int cb_message_begin(llhttp_t *p)
{
    lp_conn *c = conn_of(p);
    lp_request *req = calloc(1, sizeof(*req));
    if (req == NULL) return -1;
    req->server = c->srv;
    req->start_ms = lp_now_ms();
    req->route = "-";
    c->req = req;
    c->header_bytes = 0;
    c->nhoffs = 0;
    c->in_value = 0;
    c->url_off = c->url_len = 0;
    c->state = CONN_HEADERS;
    c->srv->stats.requests_total++;
    conn_deadline(c, c->srv->cfg->header_timeout_ms);
    return 0;
}

static int cb_url(llhttp_t *p, const char *at, size_t n)
{
    lp_conn *c = conn_of(p);
    if (header_budget(c, n)) return -1;
    lp_request *r = c->req;
    if (c->url_len == 0) c->url_off = r->hbuf_len;
    c->url_len += n;
    return lp_buf_append(&r->hbuf, &r->hbuf_len, &r->hbuf_cap, at, n) ? -1 : 0;
}

static int cb_url_complete(llhttp_t *p)
{
    lp_conn *c = conn_of(p);
    lp_request *r = c->req;
    /* NUL after the URL so the path can be handed out as a C string. */
    return lp_buf_append(&r->hbuf, &r->hbuf_len, &r->hbuf_cap, "", 1) ? -1 : 0;
}

static int cb_header_field(llhttp_t *p, const char *at, size_t n)
{
    lp_conn *c = conn_of(p);
    lp_request *r = c->req;
    if (header_budget(c, n)) return -1;
    if (c->in_value || c->nhoffs == 0 || c->hoffs[c->nhoffs - 1].name_len != (size_t)-1) {
        if (c->nhoffs == c->hoffs_cap) {
            int cap = c->hoffs_cap ? c->hoffs_cap * 2 : 16;
            hdr_off *nh = realloc(c->hoffs, (size_t)cap * sizeof(hdr_off));
            if (nh == NULL) return -1;
            c->hoffs = nh;
            c->hoffs_cap = cap;
        }
        hdr_off *h = &c->hoffs[c->nhoffs++];
        h->name_off = r->hbuf_len;
        h->name_len = (size_t)-1; /* open */
        h->value_off = 0;
        h->value_len = 0;
        c->in_value = 0;
    }
    return lp_buf_append(&r->hbuf, &r->hbuf_len, &r->hbuf_cap, at, n) ? -1 : 0;
}

static int cb_header_field_complete(llhttp_t *p)
{
    lp_conn *c = conn_of(p);
    hdr_off *h = &c->hoffs[c->nhoffs - 1];
    h->name_len = c->req->hbuf_len - h->name_off;
    h->value_off = c->req->hbuf_len;
    return 0;
}

static int cb_header_value(llhttp_t *p, const char *at, size_t n)
{
    lp_conn *c = conn_of(p);
    lp_request *r = c->req;
    if (header_budget(c, n)) return -1;
    c->in_value = 1;
    return lp_buf_append(&r->hbuf, &r->hbuf_len, &r->hbuf_cap, at, n) ? -1 : 0;
}

static int cb_header_value_complete(llhttp_t *p)
{
    lp_conn *c = conn_of(p);
    hdr_off *h = &c->hoffs[c->nhoffs - 1];
    h->value_len = c->req->hbuf_len - h->value_off;
    c->in_value = 1;
    return 0;
}

static int cb_headers_complete(llhttp_t *p)
{
    lp_conn *c = conn_of(p);
    lp_request *r = c->req;
    const lp_config *cfg = c->srv->cfg;

    const char *method = llhttp_method_name(llhttp_get_method(p));
    size_t mlen = strlen(method);
    if (mlen >= sizeof(r->method)) mlen = sizeof(r->method) - 1;
    memcpy(r->method, method, mlen);
    r->method[mlen] = '\0';
    r->head = strcmp(r->method, "HEAD") == 0;
    if (r->hbuf == NULL && lp_buf_append(&r->hbuf, &r->hbuf_len, &r->hbuf_cap, "", 1)) return -1;
    r->headers = calloc((size_t)c->nhoffs + 1, sizeof(lp_header));
    if (r->headers == NULL) return -1;
    for (int i = 0; i < c->nhoffs; i++) {
        hdr_off *h = &c->hoffs[i];
        if (h->name_len == (size_t)-1) h->name_len = 0;
        char *name = r->hbuf + h->name_off;
        for (size_t k = 0; k < h->name_len; k++)
            name[k] = (char)tolower((unsigned char)name[k]);
        r->headers[i] = (lp_header){name, h->name_len, r->hbuf + h->value_off, h->value_len};
    }
    r->nheaders = c->nhoffs;
    char *url = r->hbuf + c->url_off;
    char *q = memchr(url, '?', c->url_len);
    r->path = url;
    r->path_len = q ? (size_t)(q - url) : c->url_len;
    if (q) {
        *q = '\0'; /* the URL is NUL-terminated after its end by cb_url_complete */
        r->query = q + 1;
        r->query_len = c->url_len - r->path_len - 1;
    }
    r->keep_alive = llhttp_should_keep_alive(p);

    size_t idlen;
    const char *id = lp_request_header(r, "x-request-id", &idlen);
    if (id && request_id_ok(id, idlen)) {
        memcpy(r->id, id, idlen);
        r->id[idlen] = '\0';
    } else {
        make_request_id(c->srv, r->id, sizeof(r->id));
    }

    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > cfg->max_body_bytes) {
        c->err_status = 413;
        c->err_code = "payload_too_large";
        c->err_title = "Payload Too Large";
        return -1;
    }
    size_t elen;
    const char *expect = lp_request_header(r, "expect", &elen);
    if (expect && elen == 12 && strncasecmp(expect, "100-continue", 12) == 0) {
        char *cont = strdup("HTTP/1.1 100 Continue\r\n\r\n");
        if (cont) conn_write(c, cont, strlen(cont));
    }
    c->state = CONN_BODY;
    conn_deadline(c, cfg->body_timeout_ms);
    return 0;
}

static int cb_body(llhttp_t *p, const char *at, size_t n)
{
    lp_conn *c = conn_of(p);
    lp_request *r = c->req;
    if (r->body_len + n > c->srv->cfg->max_body_bytes) {
        c->err_status = 413;
        c->err_code = "payload_too_large";
        c->err_title = "Payload Too Large";
        return -1;
    }
    return lp_buf_append(&r->body, &r->body_len, &r->body_cap, at, n) ? -1 : 0;
}

static int cb_message_complete(llhttp_t *p)
{
    lp_conn *c = conn_of(p);
    conn_deadline(c, 0);
    c->state = CONN_HANDLING;
    c->active = c->req;
    c->req = NULL;
    if (c->active->body == NULL &&
        lp_buf_append(&c->active->body, &c->active->body_len, &c->active->body_cap, "", 0))
        return -1;
    return HPE_PAUSED;
}

/* ---- the connection loop ---------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    lp_conn *c = h->data;
    size_t want = 64 * 1024;
    if (c->in_cap - c->in_len < want) {
        size_t ncap = c->in_cap ? c->in_cap : want;
        while (ncap - c->in_len < want)
            ncap *= 2;
        char *nb = realloc(c->in, ncap);
        if (nb == NULL) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        c->in = nb;
        c->in_cap = ncap;
    }
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

/* Parses what has arrived; hands complete requests to the handler, one at a
 * time. Re-entered when an answer completes. */
static void process(lp_conn *c)
{
    if (c->in_process || c->closing) return;
    c->in_process = 1;
    size_t off = 0;
    while (!c->closing && c->active == NULL && !c->shutting) {
        if (off == c->in_len) break;
        const char *start = c->in + off;
        llhttp_errno_t err = llhttp_execute(&c->parser, start, c->in_len - off);
        if (err == HPE_OK) {
            off = c->in_len;
            break;
        }
        if (err == HPE_PAUSED) {
            off += (size_t)(llhttp_get_error_pos(&c->parser) - start);
            llhttp_resume(&c->parser);
            lp_request *req = c->active;
            req->conn = c;
            c->srv->stats.requests_active++;
            c->srv->handler(req, c->srv->data);
            continue;
        }
        /* A parse error or a limit. */
        if (c->err_status)
            conn_fail(c, c->err_status, c->err_code, c->err_title);
        else
            conn_fail(c, 400, "bad_request", "Bad Request");
        off = c->in_len;
        break;
    }
    if (off > 0 && !c->closing) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    c->in_process = 0;
    if (c->closing || c->shutting) return;
    if (c->active == NULL && c->state == CONN_IDLE)
        conn_deadline(c, c->srv->cfg->keepalive_timeout_ms);
    /* Bound what a client may queue behind an in-flight request. */
    size_t backlog = c->srv->cfg->max_header_bytes + c->srv->cfg->max_body_bytes + 65536;
    if (c->in_len > backlog && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    } else if (c->in_len <= backlog && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read) == 0) c->reading = 1;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    lp_conn *c = s->data;
    if (nread < 0) {
        /* The client closed or the socket failed: an in-flight request keeps
         * running but sees its client gone. */
        conn_close(c);
        return;
    }
    if (nread == 0) return;
    c->in_len += (size_t)nread;
    process(c);
}

static void on_timer(uv_timer_t *t)
{
    lp_conn *c = t->data;
    c->timer_due = 0;
    if (c->deadline == 0) return;
    uint64_t now = uv_now(c->srv->loop);
    if (now < c->deadline) {
        arm(c, now);
        return;
    }
    c->deadline = 0;
    switch (c->state) {
    case CONN_IDLE:
        conn_close(c);
        break;
    case CONN_HEADERS:
    case CONN_BODY:
        conn_fail(c, 408, "request_timeout", "Request Timeout");
        break;
    case CONN_HANDLING:
        break;
    }
}

static void on_conn_closed(uv_handle_t *h)
{
    lp_conn *c = h->data;
    if (--c->open_handles > 0) return;
    lp_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->stats.connections_open--;
    request_free(c->req);
    free(c->hoffs);
    free(c->in);
    free(c);
}

static void conn_close(lp_conn *c)
{
    if (c->closing) return;
    c->closing = 1;
    if (c->active) {
        c->active->conn = NULL; /* the handler finishes it later */
        c->active = NULL;
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_connection(uv_stream_t *listener, int status)
{
    lp_server *s = listener->data;
    if (status < 0) return;
    lp_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) return;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->stats.connections_open++;
    s->stats.connections_total++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0 ||
        s->stats.connections_open > (uint64_t)s->cfg->max_connections) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
    c->parser.data = c;
    /* Strict parsing: every lenient flag stays off (llhttp's default). */
    llhttp_set_lenient_headers(&c->parser, 0);
    llhttp_set_lenient_chunked_length(&c->parser, 0);
    llhttp_set_lenient_keep_alive(&c->parser, 0);
    llhttp_set_lenient_transfer_encoding(&c->parser, 0);
    c->state = CONN_IDLE;
    conn_deadline(c, s->cfg->keepalive_timeout_ms);
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read) == 0) c->reading = 1;
}

/* ---- the server ------------------------------------------------------- */

int lp_server_open(lp_server **out, uv_loop_t *loop, const lp_config *cfg, lp_metrics *metrics,
                   lp_server_handler handler, void *data)
{
    lp_server *s = calloc(1, sizeof(*s));
    if (s == NULL) return UV_ENOMEM;
    s->loop = loop;
    s->cfg = cfg;
    s->metrics = metrics;
    s->handler = handler;
    s->data = data;
    randombytes_buf(&s->id_prefix, sizeof(s->id_prefix));
    llhttp_settings_init(&s->settings);
    s->settings.on_message_begin = cb_message_begin;
    s->settings.on_url = cb_url;
    s->settings.on_url_complete = cb_url_complete;
    s->settings.on_header_field = cb_header_field;
    s->settings.on_header_field_complete = cb_header_field_complete;
    s->settings.on_header_value = cb_header_value;
    s->settings.on_header_value_complete = cb_header_value_complete;
    s->settings.on_headers_complete = cb_headers_complete;
    s->settings.on_body = cb_body;
    s->settings.on_message_complete = cb_message_complete;

    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(cfg->host, cfg->port, (struct sockaddr_in *)&addr);
    if (rc < 0) rc = uv_ip6_addr(cfg->host, cfg->port, (struct sockaddr_in6 *)&addr);
    if (rc < 0) goto fail;
    rc = uv_tcp_init_ex(loop, &s->listener, addr.ss_family);
    if (rc < 0) goto fail;
    s->listener.data = s;
    uv_os_fd_t fd;
    int one = 1;
    /* libuv 1.44 has no UV_TCP_REUSEPORT: set it on the raw socket so every
     * worker process binds the same port and the kernel spreads accepts. */
    if (uv_fileno((uv_handle_t *)&s->listener, &fd) == 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    if (rc < 0) {
        uv_close((uv_handle_t *)&s->listener, (uv_close_cb)free);
        *out = NULL;
        return rc;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen) == 0)
        s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    s->listening = 1;
    *out = s;
    return 0;
fail:
    free(s);
    *out = NULL;
    return rc;
}

void lp_server_stop_accepting(lp_server *srv)
{
    if (!srv->listening) return;
    srv->listening = 0;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    for (lp_conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        if (c->active == NULL)
            conn_close(c);
        else
            c->shutting = 1;
    }
}

void lp_server_close(lp_server *srv)
{
    if (srv == NULL) return;
    lp_server_stop_accepting(srv);
    srv->closing = 1;
    for (lp_conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        conn_close(c);
    }
}

void lp_server_free(lp_server *srv)
{
    free(srv);
}

void lp_server_stats_get(const lp_server *srv, lp_server_stats *out)
{
    *out = srv->stats;
}

int lp_server_port(const lp_server *srv)
{
    return srv->port;
}
