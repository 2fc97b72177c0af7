/* fetch.c — libcurl multi on libuv (the multi_socket pattern of curl's
 * multi-uv.c example), plus what a server needs around it: a silence
 * deadline, cancellation, a body limit, and callbacks that never run inside
 * libcurl.
 *
 * libcurl forbids most multi calls from inside its callbacks, so the write
 * and header callbacks only copy bytes. After each curl_multi_socket_action
 * returns, process() hands buffered chunks to their owners and then reports
 * finished transfers; cancellation is carried out by a zero-delay timer. */
#include "fetch.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "host.h"
#include "log.h"
#include "lp.h"

#define DEFAULT_MAX_BODY   (16u << 20)
#define DEFAULT_CONNECT_MS 10000

typedef struct buf {
    char *data;
    size_t len, cap;
} buf;

struct lp_fetch_req {
    lp_fetch *f;
    CURL *easy;
    struct curl_slist *req_headers;
    lp_fetch_chunk_cb on_chunk;
    lp_fetch_done_cb on_done;
    void *ud;
    size_t max_body;
    int read_timeout_ms;
    uv_timer_t read_timer; /* the silence deadline (always initialised)   */
    buf body;              /* unstreamed body                             */
    buf pending;           /* streamed bytes not yet handed to on_chunk   */
    buf hbuf;              /* "name\0value\0" pairs of the final response */
    size_t *hoff;          /* offset of each name in hbuf                 */
    size_t nh, hoff_cap;
    lp_fetch_header *hdrs; /* built from hbuf/hoff when reporting          */
    int body_started;      /* later header lines are trailers: ignored    */
    int err;               /* an LP_E* decided by us (size limit)          */
    int cancelled;
    int finished;
    int in_ready;
    lp_fetch_req *ready_next;  /* chunks waiting for delivery                 */
    lp_fetch_req *prev, *next; /* f->active                                  */
    char errbuf[CURL_ERROR_SIZE];
};

typedef struct sock_ctx {
    uv_poll_t poll;
    lp_fetch *f;
    curl_socket_t fd;
    struct sock_ctx *prev, *next;
} sock_ctx;

struct lp_fetch {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer; /* curl's timeout                       */
    uv_timer_t defer; /* carries out cancellations            */
    int default_timeout_ms;
    lp_fetch_req *active; /* started, on_done not yet called      */
    lp_fetch_req *ready;  /* have streamed bytes to deliver       */
    sock_ctx *socks;      /* sockets curl asked us to watch       */
    int closed;
    int open_handles; /* freed when closed and this is 0       */
};

/* ---- small helpers --------------------------------------------------------- */

static int buf_add(buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL) return LP_ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static void handle_closed(uv_handle_t *h);

static void maybe_free(lp_fetch *f)
{
    if (f->closed && f->open_handles == 0) free(f);
}

/* ---- requests --------------------------------------------------------------- */

static void req_closed(uv_handle_t *h)
{
    lp_fetch_req *q = h->data;
    free(q->body.data);
    free(q->pending.data);
    free(q->hbuf.data);
    free(q->hoff);
    free(q->hdrs);
    free(q);
}

static void build_head(lp_fetch_req *q, lp_fetch_response *res)
{
    memset(res, 0, sizeof(*res));
    long code = 0;
    curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &code);
    res->status = (int)code;
    free(q->hdrs);
    q->hdrs = q->nh ? calloc(q->nh, sizeof(*q->hdrs)) : NULL;
    if (q->hdrs != NULL) {
        for (size_t i = 0; i < q->nh; i++) {
            q->hdrs[i].name = q->hbuf.data + q->hoff[i];
            q->hdrs[i].value = q->hdrs[i].name + strlen(q->hdrs[i].name) + 1;
        }
        res->headers = q->hdrs;
        res->nheaders = q->nh;
    }
    res->errmsg = "";
}

/* Reports the transfer and retires the request. Never called from inside
 * libcurl. */
static void finish(lp_fetch_req *q, int err, const char *errmsg)
{
    lp_fetch *f = q->f;
    q->finished = 1;
    curl_multi_remove_handle(f->multi, q->easy);
    uv_timer_stop(&q->read_timer);
    if (q->in_ready) {
        lp_fetch_req **pp = &f->ready;
        while (*pp != q)
            pp = &(*pp)->ready_next;
        *pp = q->ready_next;
        q->in_ready = 0;
    }
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        f->active = q->next;
    if (q->next != NULL) q->next->prev = q->prev;

    lp_fetch_response res;
    build_head(q, &res);
    res.err = err;
    res.errmsg = errmsg != NULL ? errmsg : "";
    if (q->on_chunk == NULL) {
        res.body = q->body.data != NULL ? q->body.data : "";
        res.body_len = q->body.len;
    }
    q->on_done(&res, q->ud);

    curl_easy_cleanup(q->easy);
    curl_slist_free_all(q->req_headers);
    uv_close((uv_handle_t *)&q->read_timer, req_closed);
}

static int map_curl_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return LP_ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return LP_EUNAVAIL;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return LP_EINVAL;
    case CURLE_OUT_OF_MEMORY:
        return LP_ENOMEM;
    default:
        return LP_EIO; /* got nothing, reset, partial body, ... */
    }
}

static void deliver_chunks(lp_fetch *f)
{
    while (f->ready != NULL) {
        lp_fetch_req *q = f->ready;
        f->ready = q->ready_next;
        q->in_ready = 0;
        if (q->cancelled || q->finished || q->pending.len == 0) continue;
        lp_fetch_response head;
        build_head(q, &head);
        /* Hand over the buffer itself; a chunk arriving meanwhile is impossible
         * (libcurl only runs from our poll and timer callbacks). */
        q->on_chunk(&head, q->pending.data, q->pending.len, q->ud);
        q->pending.len = 0;
    }
}

static void check_done(lp_fetch *f)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURLcode rc = msg->data.result;
        lp_fetch_req *q = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&q);
        if (q == NULL || q->cancelled || q->finished) continue; /* the defer timer reports it */
        if (q->err != 0) {
            finish(q, q->err, "response body too large");
        } else {
            int err = map_curl_error(rc);
            finish(q, err, err == 0 ? "" : q->errbuf[0] ? q->errbuf : curl_easy_strerror(rc));
        }
    }
}

static void process(lp_fetch *f)
{
    deliver_chunks(f);
    check_done(f);
}

static void on_read_timeout(uv_timer_t *t);

static void touch(lp_fetch_req *q)
{
    if (q->read_timeout_ms > 0)
        uv_timer_start(&q->read_timer, on_read_timeout, (uint64_t)q->read_timeout_ms, 0);
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    lp_fetch_req *q = ud;
    size_t n = size * nmemb;
    if (q->cancelled) return 0; /* aborts the transfer */
    touch(q);
    q->body_started = 1;
    if (q->on_chunk != NULL) {
        if (buf_add(&q->pending, ptr, n) != 0) return 0;
        if (!q->in_ready) {
            q->in_ready = 1;
            q->ready_next = q->f->ready;
            q->f->ready = q;
        }
        return n;
    }
    if (q->body.len + n > q->max_body) {
        q->err = LP_ETOOBIG;
        return 0;
    }
    return buf_add(&q->body, ptr, n) == 0 ? n : 0;
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && isspace((unsigned char)**s))
        (*s)++, (*n)--;
    while (*n > 0 && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

/* Collects the headers of the final response: a status line starts a new
 * response (after 1xx or a proxy CONNECT), so it forgets what came before. */
static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
    lp_fetch_req *q = ud;
    size_t n = size * nmemb;
    if (q->cancelled) return 0;
    touch(q);
    if (q->body_started) return n;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        q->hbuf.len = 0;
        q->nh = 0;
        return n;
    }
    const char *colon = memchr(line, ':', n);
    if (colon == NULL || colon == line) return n;
    const char *name = line, *value = colon + 1;
    size_t nlen = (size_t)(colon - line), vlen = n - nlen - 1;
    trim(&name, &nlen);
    trim(&value, &vlen);
    if (q->nh == q->hoff_cap) {
        size_t cap = q->hoff_cap ? q->hoff_cap * 2 : 16;
        size_t *o = realloc(q->hoff, cap * sizeof(*o));
        if (o == NULL) return 0;
        q->hoff = o;
        q->hoff_cap = cap;
    }
    size_t off = q->hbuf.len;
    char lower[128];
    size_t l = nlen < sizeof(lower) ? nlen : sizeof(lower);
    for (size_t i = 0; i < l; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    if (buf_add(&q->hbuf, lower, l) != 0 || buf_add(&q->hbuf, "", 1) != 0 ||
        buf_add(&q->hbuf, value, vlen) != 0 || buf_add(&q->hbuf, "", 1) != 0)
        return 0;
    q->hoff[q->nh++] = off;
    return n;
}

static void on_read_timeout(uv_timer_t *t)
{
    lp_fetch_req *q = t->data;
    if (q->cancelled || q->finished) return;
    char msg[64];
    snprintf(msg, sizeof(msg), "no data for %d ms", q->read_timeout_ms);
    finish(q, LP_ETIMEDOUT, msg);
}

static void on_defer(uv_timer_t *t)
{
    lp_fetch *f = t->data;
    lp_fetch_req *next;
    for (lp_fetch_req *q = f->active; q != NULL; q = next) {
        next = q->next;
        if (q->cancelled) finish(q, LP_ECLOSED, "cancelled");
    }
}

void lp_fetch_cancel(lp_fetch_req *q)
{
    if (q == NULL || q->cancelled || q->finished) return;
    q->cancelled = 1;
    uv_timer_start(&q->f->defer, on_defer, 0, 0);
}

/* ---- libcurl ↔ libuv ----------------------------------------------------------- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_ctx *c = h->data;
    lp_fetch *f = c->f;
    int flags = 0;
    if (status < 0) flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(f->multi, c->fd, flags, &running);
    process(f);
}

static void sock_unlink(sock_ctx *c)
{
    lp_fetch *f = c->f;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        f->socks = c->next;
    if (c->next != NULL) c->next->prev = c->prev;
    f->open_handles++;
    uv_close((uv_handle_t *)&c->poll, handle_closed);
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    lp_fetch *f = userp;
    sock_ctx *c = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (c != NULL) {
            curl_multi_assign(f->multi, s, NULL);
            sock_unlink(c);
        }
        return 0;
    }
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c == NULL) return -1;
        if (uv_poll_init_socket(f->loop, &c->poll, s) != 0) {
            free(c);
            return -1;
        }
        c->poll.data = c;
        c->f = f;
        c->fd = s;
        c->next = f->socks;
        if (f->socks != NULL) f->socks->prev = c;
        f->socks = c;
        curl_multi_assign(f->multi, s, c);
    }
    int events = 0;
    if (what & CURL_POLL_IN) events |= UV_READABLE;
    if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
    uv_poll_start(&c->poll, events, on_poll);
    return 0;
}

static void on_curl_timeout(uv_timer_t *t)
{
    lp_fetch *f = t->data;
    int running;
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    process(f);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    lp_fetch *f = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&f->timer);
    else /* 0 too: socket_action may not be called from this callback */
        uv_timer_start(&f->timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- starting a transfer ---------------------------------------------------- */

static int valid_method(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > 16) return 0;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z') return 0;
    return 1;
}

static int has_header(const lp_fetch_options *o, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < o->nheaders; i++)
        if (strncasecmp(o->headers[i], name, n) == 0 && o->headers[i][n] == ':') return 1;
    return 0;
}

static int setup(lp_fetch_req *q, const lp_fetch_options *o, int timeout_ms)
{
    CURL *e = q->easy;
    const char *method = o->method != NULL ? o->method : "GET";
    int connect_ms = o->connect_timeout_ms > 0
                         ? o->connect_timeout_ms
                         : (timeout_ms < DEFAULT_CONNECT_MS ? timeout_ms : DEFAULT_CONNECT_MS);
    for (size_t i = 0; i < o->nheaders; i++) {
        struct curl_slist *l = curl_slist_append(q->req_headers, o->headers[i]);
        if (l == NULL) return LP_ENOMEM;
        q->req_headers = l;
    }
    /* curl would hold a large body back for a "100 Continue" many servers
     * never send. */
    if (!has_header(o, "Expect")) {
        struct curl_slist *l = curl_slist_append(q->req_headers, "Expect:");
        if (l == NULL) return LP_ENOMEM;
        q->req_headers = l;
    }
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, o->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)q) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, q->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, q) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, q) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->req_headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "lifeplan") != CURLE_OK;
    if (strcmp(method, "HEAD") == 0) {
        bad |= curl_easy_setopt(e, CURLOPT_NOBODY, 1L) != CURLE_OK;
    } else if (strcmp(method, "GET") != 0 || o->body != NULL) {
        if (strcmp(method, "POST") != 0)
            bad |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK;
        if (o->body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
            strcmp(method, "PATCH") == 0) {
            bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                    (curl_off_t)(o->body != NULL ? o->body_len : 0)) != CURLE_OK;
            bad |= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body != NULL ? o->body : "") !=
                   CURLE_OK;
        }
    }
    return bad ? LP_EINVAL : 0;
}

int lp_fetch_start(lp_fetch *f, const lp_fetch_options *o, lp_fetch_req **out)
{
    if (out != NULL) *out = NULL;
    if (f == NULL || o == NULL || o->url == NULL || o->on_done == NULL) return LP_EINVAL;
    if (o->method != NULL && !valid_method(o->method)) return LP_EINVAL;
    if (o->nheaders > 0 && o->headers == NULL) return LP_EINVAL;
    for (size_t i = 0; i < o->nheaders; i++) /* no header injection */
        if (o->headers[i] == NULL || strpbrk(o->headers[i], "\r\n") != NULL) return LP_EINVAL;
    if (o->timeout_ms < 0 || o->connect_timeout_ms < 0 || o->read_timeout_ms < 0) return LP_EINVAL;
    if (f->closed) return LP_ECLOSED;

    lp_fetch_req *q = calloc(1, sizeof(*q));
    if (q == NULL) return LP_ENOMEM;
    q->easy = curl_easy_init();
    if (q->easy == NULL) {
        free(q);
        return LP_ENOMEM;
    }
    q->f = f;
    q->on_chunk = o->on_chunk;
    q->on_done = o->on_done;
    q->ud = o->ud;
    q->max_body = o->max_body_bytes > 0 ? o->max_body_bytes : DEFAULT_MAX_BODY;
    q->read_timeout_ms = o->read_timeout_ms;
    int rc = setup(q, o, o->timeout_ms > 0 ? o->timeout_ms : f->default_timeout_ms);
    if (rc == 0 && curl_multi_add_handle(f->multi, q->easy) != CURLM_OK) rc = LP_ENOMEM;
    if (rc != 0) {
        curl_easy_cleanup(q->easy);
        curl_slist_free_all(q->req_headers);
        free(q);
        return rc;
    }
    uv_timer_init(f->loop, &q->read_timer);
    q->read_timer.data = q;
    touch(q);
    q->next = f->active;
    if (f->active != NULL) f->active->prev = q;
    f->active = q;
    if (out != NULL) *out = q;
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------- */

const char *lp_fetch_resolver(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if (!(v->features & CURL_VERSION_ASYNCHDNS)) return "blocking";
    return v->ares != NULL ? "c-ares" : "threaded";
}

static void handle_closed(uv_handle_t *h)
{
    lp_fetch *f;
    if (h->type == UV_POLL) {
        sock_ctx *c = h->data;
        f = c->f;
        free(c);
    } else {
        f = h->data;
    }
    f->open_handles--;
    maybe_free(f);
}

int lp_fetch_open(lp_fetch **out, uv_loop_t *loop, int default_timeout_ms)
{
    static int curl_ready;
    if (out == NULL || loop == NULL || default_timeout_ms <= 0) return LP_EINVAL;
    *out = NULL;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return LP_ENOMEM;
        curl_ready = 1;
        if (strcmp(lp_fetch_resolver(), "blocking") == 0)
            lp_logf("warn", "fetch: libcurl resolves names synchronously; DNS lookups will "
                            "block the loop");
    }
    lp_fetch *f = calloc(1, sizeof(*f));
    if (f == NULL) return LP_ENOMEM;
    f->multi = curl_multi_init();
    if (f->multi == NULL) {
        free(f);
        return LP_ENOMEM;
    }
    f->loop = loop;
    f->default_timeout_ms = default_timeout_ms;
    uv_timer_init(loop, &f->timer);
    uv_timer_init(loop, &f->defer);
    f->timer.data = f->defer.data = f;
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
    *out = f;
    return 0;
}

void lp_fetch_close(lp_fetch *f)
{
    if (f == NULL || f->closed) return;
    f->closed = 1;
    while (f->active != NULL)
        finish(f->active, LP_ECLOSED, "closing");
    /* Stop watching first so curl can close its cached connections freely. */
    while (f->socks != NULL) {
        curl_multi_assign(f->multi, f->socks->fd, NULL);
        sock_unlink(f->socks);
    }
    curl_multi_cleanup(f->multi);
    f->open_handles += 2;
    uv_close((uv_handle_t *)&f->timer, handle_closed);
    uv_close((uv_handle_t *)&f->defer, handle_closed);
}

int lp_fetch_host_open(lp_host *h)
{
    if (h == NULL || h->cfg == NULL) return LP_EINVAL;
    return lp_fetch_open(&h->fetch, h->loop, h->cfg->http_timeout_ms);
}

void lp_fetch_host_close(lp_host *h)
{
    if (h == NULL || h->fetch == NULL) return;
    lp_fetch_close(h->fetch);
    h->fetch = NULL;
}
