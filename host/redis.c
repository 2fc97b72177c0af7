/* redis.c — hiredis async on the libuv loop: deadlines, reconnect, handshake.
 *
 * Connection states: WAIT (backoff timer armed, commands refused), RESOLVING
 * (uv_getaddrinfo in flight, commands refused), CONNECTING (a hiredis context
 * exists; AUTH/SELECT/PING are queued first, commands queue behind them),
 * READY (handshake answered), CLOSED.
 *
 * Every command is a `req` with its own deadline timer. A req may be behind
 * several hiredis callbacks (a pipeline); it is freed once it has completed
 * and all of them have run, so a reply arriving after a timeout or a drop
 * always finds valid memory. */
#include "redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/async.h>

#include "host.h"
#include "log.h"
#include "lp.h"

#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS   2000

enum { ST_WAIT, ST_RESOLVING, ST_CONNECTING, ST_READY, ST_CLOSED };
enum { REQ_COMMAND, REQ_PIPELINE, REQ_PING, REQ_HANDSHAKE };

struct lp_redis {
    uv_loop_t *loop;
    int timeout_ms;
    /* where, from the URL */
    char host[256];     /* host name or numeric address ("" for unix)      */
    char path[256];     /* unix socket path ("" for tcp)                   */
    char user[128];     /* ACL user for AUTH, "" for a password-only AUTH  */
    char password[256]; /* "" for no AUTH                                  */
    int port;
    int db; /* SELECT db when > 0                              */
    /* connection */
    int state;
    redisAsyncContext *ac; /* current context, NULL unless CONNECTING/READY */
    int drop_err;          /* status for commands failed by our own drop    */
    uv_timer_t retry;      /* backoff before the next attempt               */
    uv_getaddrinfo_t gai;
    int gai_active;
    int retry_closed;
    int backoff_ms; /* delay of the next retry after this one         */
    int ever_ready;
    int logged_down; /* "down" was logged; log again only after "up"  */
    lp_redis_stats stats;
};

typedef struct req {
    lp_redis *r;
    int kind;
    union {
        lp_redis_cb command;
        lp_redis_pipeline_cb pipeline;
        lp_redis_ping_cb ping;
    } cb;
    void *data;
    uv_timer_t timer;      /* the deadline                               */
    redisAsyncContext *ac; /* the connection the commands went out on    */
    size_t n;              /* commands                                   */
    size_t got;            /* replies received so far                    */
    size_t outstanding;    /* hiredis callbacks that have not run yet    */
    int done;              /* the caller was answered (or never will be) */
    int closing;
    redisReply **replies; /* pipelines: copies of replies 0..n-2        */
} req;

/* Our own libuv glue for one hiredis context, modelled on
 * hiredis/adapters/libuv.h. We cannot use that adapter as is: in 0.14 its
 * poll callback ignores a non-zero status, and libuv reports a refused
 * connect or a reset socket exactly that way (then stops the handle), so the
 * context would never learn it is dead and its commands would wait forever. */
typedef struct conn_ev {
    uv_poll_t poll;
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
    int events;
} conn_ev;

static void start_attempt(lp_redis *r);
static void schedule_retry(lp_redis *r);

static void log_line(const char *level, const char *msg, const char *detail)
{
    if (detail[0] != '\0')
        lp_logf(level, "redis: %s: %s", msg, detail);
    else
        lp_logf(level, "redis: %s", msg);
}

/* ---- libuv glue ---------------------------------------------------------- */

static void ev_poll(uv_poll_t *h, int status, int events)
{
    conn_ev *e = h->data;
    /* On error, let hiredis try what it waits for: its read or write then
     * meets the socket error and tears the context down. */
    int ev = status < 0 ? e->events : events;
    if (e->ac != NULL && (ev & UV_READABLE)) redisAsyncHandleRead(e->ac);
    if (e->ac != NULL && (ev & UV_WRITABLE)) redisAsyncHandleWrite(e->ac);
}

static void ev_update(conn_ev *e, int events)
{
    e->events = events;
    if (events != 0)
        uv_poll_start(&e->poll, events, ev_poll);
    else
        uv_poll_stop(&e->poll);
}

static void ev_add_read(void *p)
{
    conn_ev *e = p;
    ev_update(e, e->events | UV_READABLE);
}

static void ev_del_read(void *p)
{
    conn_ev *e = p;
    ev_update(e, e->events & ~UV_READABLE);
}

static void ev_add_write(void *p)
{
    conn_ev *e = p;
    ev_update(e, e->events | UV_WRITABLE);
}

static void ev_del_write(void *p)
{
    conn_ev *e = p;
    ev_update(e, e->events & ~UV_WRITABLE);
}

static void ev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ev_cleanup(void *p)
{
    conn_ev *e = p;
    e->ac = NULL;
    uv_close((uv_handle_t *)&e->poll, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    conn_ev *e = calloc(1, sizeof(*e));
    if (e == NULL) return LP_ENOMEM;
    if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return LP_EIO;
    }
    e->poll.data = e;
    e->ac = ac;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* ---- replies --------------------------------------------------------------- */

/* hiredis frees a reply when its callback returns; a pipeline keeps the early
 * ones until the last arrives. The copy is freed with freeReplyObject. */
static redisReply *reply_dup(const redisReply *src)
{
    redisReply *d = calloc(1, sizeof(*d));
    if (d == NULL) return NULL;
    d->type = src->type;
    d->integer = src->integer;
    if (src->str != NULL) {
        d->str = malloc(src->len + 1);
        if (d->str == NULL) goto fail;
        memcpy(d->str, src->str, src->len);
        d->str[src->len] = '\0';
        d->len = src->len;
    }
    if (src->element != NULL) {
        d->element = calloc(src->elements ? src->elements : 1, sizeof(*d->element));
        if (d->element == NULL) goto fail;
        d->elements = src->elements;
        for (size_t i = 0; i < src->elements; i++) {
            d->element[i] = reply_dup(src->element[i]);
            if (d->element[i] == NULL) goto fail;
        }
    }
    return d;
fail:
    freeReplyObject(d);
    return NULL;
}

static int reply_is(const redisReply *rep, int type, const char *str)
{
    return rep != NULL && rep->type == type && rep->len == strlen(str) &&
           strcasecmp(rep->str, str) == 0;
}

/* ---- requests ---------------------------------------------------------------- */

static void req_closed(uv_handle_t *h)
{
    req *q = h->data;
    if (q->replies != NULL) {
        for (size_t i = 0; i < q->n; i++)
            if (q->replies[i] != NULL) freeReplyObject(q->replies[i]);
        free(q->replies);
    }
    free(q);
}

static void req_maybe_free(req *q)
{
    if (q->done && q->outstanding == 0 && !q->closing) {
        q->closing = 1;
        uv_close((uv_handle_t *)&q->timer, req_closed);
    }
}

static void handshake_done(req *q, int status, redisReply *last);

/* Answers the caller: status 0 with the last reply (earlier ones in
 * q->replies), or an error. */
static void req_finish(req *q, int status, redisReply *last)
{
    lp_redis *r = q->r;
    q->done = 1;
    uv_timer_stop(&q->timer);
    if (status != 0 && q->kind != REQ_HANDSHAKE) r->stats.errors++;
    switch (q->kind) {
    case REQ_COMMAND:
        q->cb.command(status, status == 0 ? last : NULL, q->data);
        break;
    case REQ_PIPELINE:
        if (status == 0) {
            q->replies[q->n - 1] = last;
            q->cb.pipeline(0, q->replies, q->n, q->data);
            q->replies[q->n - 1] = NULL; /* hiredis owns it */
        } else {
            q->cb.pipeline(status, NULL, 0, q->data);
        }
        break;
    case REQ_PING:
        if (status == 0 && !reply_is(last, REDIS_REPLY_STATUS, "PONG")) status = LP_EQUERY;
        q->cb.ping(status, q->data);
        break;
    case REQ_HANDSHAKE:
        handshake_done(q, status, last);
        break;
    }
}

/* Drops the current connection (pending commands fail with `err`). Safe from
 * a hiredis reply callback, where hiredis defers the free until it returns. */
static void conn_drop(lp_redis *r, int err)
{
    redisAsyncContext *ac = r->ac;
    if (ac == NULL) return;
    r->ac = NULL;
    if (r->state != ST_CLOSED) r->state = ST_WAIT;
    ac->data = NULL; /* our connect/disconnect callbacks ignore it now */
    r->drop_err = err;
    redisAsyncFree(ac);
    r->drop_err = 0;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    req *q = privdata;
    lp_redis *r = q->r;
    redisReply *rep = reply;
    q->outstanding--;
    if (!q->done) {
        if (rep == NULL) {
            /* hiredis is freeing the context: connection lost or dropped.
             * Refuse new commands before the caller hears about it. */
            if (q->ac == r->ac && r->state != ST_CLOSED) r->state = ST_WAIT;
            req_finish(q, r->drop_err ? r->drop_err : LP_EUNAVAIL, NULL);
        } else if (++q->got < q->n) {
            q->replies[q->got - 1] = reply_dup(rep);
            if (q->replies[q->got - 1] == NULL) req_finish(q, LP_ENOMEM, NULL);
        } else {
            req_finish(q, 0, rep);
        }
    }
    req_maybe_free(q);
}

static void on_deadline(uv_timer_t *t)
{
    req *q = t->data;
    lp_redis *r = q->r;
    if (q->done) return;
    q->done = 1; /* our own hiredis callbacks below must not answer again */
    /* Replies come back in order; one we gave up on would be read as the
     * answer to the next command. Start afresh on a new connection. */
    int was_current = q->ac == r->ac && r->ac != NULL;
    if (was_current) {
        log_line("warn", "command timed out, reconnecting", "");
        conn_drop(r, LP_EUNAVAIL);
    }
    q->done = 0;
    req_finish(q, LP_ETIMEDOUT, NULL);
    if (was_current && r->state != ST_CLOSED) schedule_retry(r);
    req_maybe_free(q);
}

static req *req_new(lp_redis *r, int kind, size_t n, void *cb, void *data)
{
    req *q = calloc(1, sizeof(*q));
    if (q == NULL) return NULL;
    if (n > 1) {
        q->replies = calloc(n, sizeof(*q->replies));
        if (q->replies == NULL) {
            free(q);
            return NULL;
        }
    }
    q->r = r;
    q->kind = kind;
    q->n = n;
    q->data = data;
    switch (kind) {
    case REQ_COMMAND:
        q->cb.command = (lp_redis_cb)cb;
        break;
    case REQ_PIPELINE:
        q->cb.pipeline = (lp_redis_pipeline_cb)cb;
        break;
    case REQ_PING:
        q->cb.ping = (lp_redis_ping_cb)cb;
        break;
    default:
        break;
    }
    uv_timer_init(r->loop, &q->timer);
    q->timer.data = q;
    return q;
}

/* Commands that would switch the connection into a mode where replies no
 * longer pair with requests. */
static int forbidden(const char *name, size_t len)
{
    static const char *const modes[] = {"subscribe",    "psubscribe",   "ssubscribe", "unsubscribe",
                                        "punsubscribe", "sunsubscribe", "monitor"};
    for (size_t i = 0; i < LP_ARRAY_SIZE(modes); i++)
        if (len == strlen(modes[i]) && strncasecmp(name, modes[i], len) == 0) return 1;
    return 0;
}

/* Sends q's commands on the current connection and arms its deadline. On
 * failure q answers nobody and frees itself once hiredis is done with it. */
static int req_send(req *q, const int *argcs, const char *const *argv, const size_t *argvlen)
{
    lp_redis *r = q->r;
    q->ac = r->ac;
    size_t off = 0;
    for (size_t i = 0; i < q->n; i++) {
        if (redisAsyncCommandArgv(r->ac, on_reply, q, argcs[i], (const char **)(argv + off),
                                  argvlen + off) != REDIS_OK) {
            int going = r->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING);
            q->done = 1;
            req_maybe_free(q);
            return going ? LP_EUNAVAIL : LP_ENOMEM;
        }
        q->outstanding++;
        off += (size_t)argcs[i];
    }
    uv_timer_start(&q->timer, on_deadline, (uint64_t)r->timeout_ms, 0);
    return 0;
}

static int submit(lp_redis *r, int kind, size_t ncmds, const int *argcs, const char *const *argv,
                  const size_t *argvlen, void *cb, void *data)
{
    if (r == NULL || cb == NULL || ncmds == 0 || argv == NULL || argvlen == NULL) return LP_EINVAL;
    size_t off = 0;
    for (size_t i = 0; i < ncmds; i++) {
        if (argcs[i] < 1 || argv[off] == NULL) return LP_EINVAL;
        if (forbidden(argv[off], argvlen[off])) return LP_EINVAL;
        off += (size_t)argcs[i];
    }
    if (r->state == ST_CLOSED) return LP_ECLOSED;
    if (r->state != ST_CONNECTING && r->state != ST_READY) {
        r->stats.errors++;
        return LP_EUNAVAIL;
    }
    req *q = req_new(r, kind, ncmds, cb, data);
    if (q == NULL) return LP_ENOMEM;
    return req_send(q, argcs, argv, argvlen);
}

int lp_redis_command(lp_redis *r, int argc, const char *const *argv, const size_t *argvlen,
                     lp_redis_cb cb, void *data)
{
    return submit(r, REQ_COMMAND, 1, &argc, argv, argvlen, (void *)cb, data);
}

int lp_redis_pipeline(lp_redis *r, size_t ncmds, const int *argcs, const char *const *argv,
                      const size_t *argvlen, lp_redis_pipeline_cb cb, void *data)
{
    if (argcs == NULL) return LP_EINVAL;
    return submit(r, REQ_PIPELINE, ncmds, argcs, argv, argvlen, (void *)cb, data);
}

int lp_redis_ping(lp_redis *r, lp_redis_ping_cb cb, void *data)
{
    static const char *const argv[] = {"PING"};
    static const size_t argvlen[] = {4};
    int argc = 1;
    return submit(r, REQ_PING, 1, &argc, argv, argvlen, (void *)cb, data);
}

void lp_redis_get_stats(const lp_redis *r, lp_redis_stats *stats)
{
    *stats = r->stats;
    stats->connected = r->state == ST_READY;
}

/* ---- connection ------------------------------------------------------------- */

static void handshake_done(req *q, int status, redisReply *last)
{
    lp_redis *r = q->r;
    if (status == LP_EUNAVAIL || status == LP_ECLOSED) return; /* connection callbacks act */
    if (status == LP_ETIMEDOUT) {
        r->stats.errors++;
        return; /* on_deadline dropped the connection and schedules a retry */
    }
    const char *why = NULL;
    for (size_t i = 0; i < q->n && why == NULL && status == 0; i++) {
        redisReply *rep = i + 1 < q->n ? q->replies[i] : last;
        if (rep->type == REDIS_REPLY_ERROR) why = rep->str;
    }
    if (status == 0 && why == NULL && !reply_is(last, REDIS_REPLY_STATUS, "PONG"))
        why = "unexpected PING reply";
    if (status != 0 || why != NULL) {
        r->stats.errors++;
        log_line("error", "handshake failed", why != NULL ? why : lp_strerror(status));
        conn_drop(r, LP_EUNAVAIL);
        schedule_retry(r);
        return;
    }
    r->state = ST_READY;
    r->backoff_ms = 0;
    if (r->ever_ready) r->stats.reconnects++;
    if (r->logged_down) log_line("info", "connected", "");
    r->ever_ready = 1;
    r->logged_down = 0;
}

/* AUTH and SELECT when the URL asks for them, then PING: the connection
 * becomes READY only once Redis has actually answered. */
static int send_handshake(lp_redis *r)
{
    const char *argv[6];
    size_t argvlen[6];
    int argcs[3];
    size_t n = 0, k = 0;
    char db[16];
    if (r->password[0] != '\0') {
        argv[k] = "AUTH", argvlen[k++] = 4;
        if (r->user[0] != '\0') argv[k] = r->user, argvlen[k] = strlen(r->user), k++;
        argv[k] = r->password, argvlen[k] = strlen(r->password), k++;
        argcs[n++] = r->user[0] != '\0' ? 3 : 2;
    }
    if (r->db > 0) {
        snprintf(db, sizeof(db), "%d", r->db);
        argv[k] = "SELECT", argvlen[k++] = 6;
        argv[k] = db, argvlen[k++] = strlen(db);
        argcs[n++] = 2;
    }
    argv[k] = "PING", argvlen[k++] = 4;
    argcs[n++] = 1;
    req *q = req_new(r, REQ_HANDSHAKE, n, NULL, NULL);
    if (q == NULL) return LP_ENOMEM;
    return req_send(q, argcs, argv, argvlen);
}

static void went_down(lp_redis *r, const char *why)
{
    r->stats.errors++;
    if (!r->logged_down) log_line("warn", "unavailable, reconnecting", why);
    r->logged_down = 1;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    lp_redis *r = ac->data;
    if (r == NULL || status == REDIS_OK) return; /* READY comes with the PONG */
    /* hiredis frees the context after this returns; pending commands get
     * NULL replies and fail with LP_EUNAVAIL. */
    ((redisAsyncContext *)ac)->data = NULL;
    r->ac = NULL;
    r->state = ST_WAIT;
    went_down(r, ac->errstr);
    schedule_retry(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    lp_redis *r = ac->data;
    if (r == NULL) return; /* dropped by us */
    r->ac = NULL;
    r->state = ST_WAIT;
    went_down(r, ac->err ? ac->errstr : "connection closed");
    schedule_retry(r);
}

static void connect_to(lp_redis *r, const char *ip)
{
    redisAsyncContext *ac =
        r->path[0] != '\0' ? redisAsyncConnectUnix(r->path) : redisAsyncConnect(ip, r->port);
    if (ac == NULL || ac->err || ev_attach(ac, r->loop) != 0) {
        went_down(r, ac != NULL && ac->err ? ac->errstr : "cannot create context");
        if (ac != NULL) redisAsyncFree(ac);
        schedule_retry(r);
        return;
    }
    ac->data = r;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->state = ST_CONNECTING;
    if (send_handshake(r) != 0) {
        conn_drop(r, LP_EUNAVAIL);
        schedule_retry(r);
    }
}

static void maybe_free(lp_redis *r)
{
    if (r->state == ST_CLOSED && r->retry_closed && !r->gai_active) free(r);
}

static void on_resolved(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    lp_redis *r = gai->data;
    r->gai_active = 0;
    if (r->state == ST_CLOSED) {
        uv_freeaddrinfo(res);
        maybe_free(r);
        return;
    }
    char ip[64] = "";
    if (status == 0) {
        /* Prefer IPv4: "localhost" often lists ::1 first, and a Redis bound
         * to 127.0.0.1 only would then look down. */
        struct addrinfo *pick = res;
        for (struct addrinfo *a = res; a != NULL; a = a->ai_next)
            if (a->ai_family == AF_INET) {
                pick = a;
                break;
            }
        if (lp_ip_name(pick->ai_addr, ip, sizeof(ip)) != 0) ip[0] = '\0';
    }
    uv_freeaddrinfo(res);
    if (ip[0] == '\0') {
        went_down(r, status < 0 ? uv_strerror(status) : "no address");
        schedule_retry(r);
        return;
    }
    connect_to(r, ip);
}

static void start_attempt(lp_redis *r)
{
    if (r->path[0] != '\0' || lp_is_ip(r->host)) {
        connect_to(r, r->host);
        return;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    r->state = ST_RESOLVING;
    r->gai.data = r;
    if (uv_getaddrinfo(r->loop, &r->gai, on_resolved, r->host, NULL, &hints) != 0) {
        went_down(r, "getaddrinfo failed");
        schedule_retry(r);
        return;
    }
    r->gai_active = 1;
}

static void on_retry(uv_timer_t *t)
{
    start_attempt(t->data);
}

/* Immediately after a working connection broke, then 50 ms doubling to 2 s. */
static void schedule_retry(lp_redis *r)
{
    if (r->state == ST_CLOSED) return;
    r->state = ST_WAIT;
    uv_timer_start(&r->retry, on_retry, (uint64_t)r->backoff_ms, 0);
    r->backoff_ms = r->backoff_ms == 0 ? BACKOFF_FIRST_MS : r->backoff_ms * 2;
    if (r->backoff_ms > BACKOFF_MAX_MS) r->backoff_ms = BACKOFF_MAX_MS;
}

/* ---- URL -------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Copies s[0..n) into dst, %-decoding; LP_EINVAL when it does not fit. */
static int copy_decoded(char *dst, size_t size, const char *s, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (j + 1 >= size) return LP_EINVAL;
        dst[j++] = c;
    }
    dst[j] = '\0';
    return 0;
}

static int parse_int(const char *s, size_t n, int min, int max, int *out)
{
    if (n == 0 || n > 9) return LP_EINVAL;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return LP_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max) return LP_EINVAL;
    *out = v;
    return 0;
}

/* unix:///path[?db=N&password=P] */
static int parse_unix(lp_redis *r, const char *s)
{
    const char *q = strchr(s, '?');
    size_t n = q != NULL ? (size_t)(q - s) : strlen(s);
    if (n == 0 || s[0] != '/' || copy_decoded(r->path, sizeof(r->path), s, n) != 0)
        return LP_EINVAL;
    while (q != NULL) {
        const char *key = q + 1;
        const char *amp = strchr(key, '&');
        const char *end = amp != NULL ? amp : key + strlen(key);
        const char *eq = memchr(key, '=', (size_t)(end - key));
        if (eq == NULL) return LP_EINVAL;
        const char *val = eq + 1;
        size_t klen = (size_t)(eq - key), vlen = (size_t)(end - val);
        if (klen == 2 && strncmp(key, "db", 2) == 0) {
            if (parse_int(val, vlen, 0, 1 << 20, &r->db) != 0) return LP_EINVAL;
        } else if (klen == 8 && strncmp(key, "password", 8) == 0) {
            if (copy_decoded(r->password, sizeof(r->password), val, vlen) != 0) return LP_EINVAL;
        } else {
            return LP_EINVAL;
        }
        q = amp;
    }
    return 0;
}

/* redis://[[user]:password@]host[:port][/db] */
static int parse_tcp(lp_redis *r, const char *s)
{
    const char *slash = strchr(s, '/');
    const char *end = slash != NULL ? slash : s + strlen(s);
    const char *at = NULL;
    for (const char *p = s; p < end; p++)
        if (*p == '@') at = p;
    const char *host = s;
    if (at != NULL) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        if (colon != NULL) {
            if (copy_decoded(r->user, sizeof(r->user), s, (size_t)(colon - s)) != 0 ||
                copy_decoded(r->password, sizeof(r->password), colon + 1,
                             (size_t)(at - colon - 1)) != 0)
                return LP_EINVAL;
        } else if (copy_decoded(r->password, sizeof(r->password), s, (size_t)(at - s)) != 0) {
            return LP_EINVAL;
        }
        host = at + 1;
    }
    const char *port = NULL, *hend = end;
    if (*host == '[') { /* [::1]:6379 */
        const char *rb = memchr(host, ']', (size_t)(end - host));
        if (rb == NULL) return LP_EINVAL;
        host++;
        hend = rb;
        if (rb + 1 < end) {
            if (rb[1] != ':') return LP_EINVAL;
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(host, ':', (size_t)(end - host));
        if (colon != NULL) hend = colon, port = colon + 1;
    }
    size_t hlen = (size_t)(hend - host);
    if (hlen == 0 || hlen >= sizeof(r->host)) return LP_EINVAL;
    memcpy(r->host, host, hlen);
    r->host[hlen] = '\0';
    r->port = 6379;
    if (port != NULL && parse_int(port, (size_t)(end - port), 1, 65535, &r->port) != 0)
        return LP_EINVAL;
    if (slash != NULL && slash[1] != '\0' &&
        parse_int(slash + 1, strlen(slash + 1), 0, 1 << 20, &r->db) != 0)
        return LP_EINVAL;
    return 0;
}

static int parse_url(lp_redis *r, const char *url)
{
    if (strncmp(url, "unix://", 7) == 0) return parse_unix(r, url + 7);
    if (strncmp(url, "redis://", 8) == 0) return parse_tcp(r, url + 8);
    return LP_EINVAL;
}

/* ---- lifecycle ------------------------------------------------------------- */

int lp_redis_open(lp_redis **out, uv_loop_t *loop, const char *url, int timeout_ms)
{
    if (out == NULL || loop == NULL || url == NULL || timeout_ms <= 0) return LP_EINVAL;
    *out = NULL;
    lp_redis *r = calloc(1, sizeof(*r));
    if (r == NULL) return LP_ENOMEM;
    if (parse_url(r, url) != 0) {
        free(r);
        return LP_EINVAL;
    }
    r->loop = loop;
    r->timeout_ms = timeout_ms;
    r->state = ST_WAIT;
    uv_timer_init(loop, &r->retry);
    r->retry.data = r;
    start_attempt(r);
    *out = r;
    return 0;
}

static void retry_closed(uv_handle_t *h)
{
    lp_redis *r = h->data;
    r->retry_closed = 1;
    maybe_free(r);
}

void lp_redis_close(lp_redis *r)
{
    if (r == NULL || r->state == ST_CLOSED) return;
    r->state = ST_CLOSED;
    conn_drop(r, LP_ECLOSED);
    if (r->gai_active) uv_cancel((uv_req_t *)&r->gai);
    uv_close((uv_handle_t *)&r->retry, retry_closed);
}

int lp_redis_host_open(lp_host *h)
{
    if (h == NULL || h->cfg == NULL) return LP_EINVAL;
    int rc = lp_redis_open(&h->redis, h->loop, h->cfg->redis_url, h->cfg->redis_timeout_ms);
    if (rc != 0) log_line("error", "cannot open (check REDIS_URL)", lp_strerror(rc));
    return rc;
}

void lp_redis_host_close(lp_host *h)
{
    if (h == NULL || h->redis == NULL) return;
    lp_redis_close(h->redis);
    h->redis = NULL;
}
