/* pg.c — the non-blocking PostgreSQL pool (see pg.h for the contract).
 *
 * Shape: a fixed array of slots, one connection each, plus one extra slot
 * for LISTEN. A slot is connecting, idle, running jobs (a FIFO: several
 * when multiplexed, each ended by its own Sync, results routed in order),
 * pinned by a caller, or down (waiting for its backoff timer). Every piece
 * of work is a job — a list of statements sent as one pipeline segment
 * ending in a Sync — so a single query, a batch, a transaction's statement,
 * the internal ROLLBACK on release and the LISTEN commands all share one
 * send/receive path.
 *
 * Re-entrancy: callbacks run from loop callbacks (poll, timers), never from
 * inside an API call, because a Lua binding resumes a coroutine from its
 * callback and must not do so while another coroutine is running. Anything
 * an API call would have to report at once (a grant to a waiter, a send that
 * failed) goes through the `defer` timer. Memory is freed only in uv close
 * callbacks, so a callback that closes the pool leaves every pointer the
 * caller still walks valid until the loop turns. */
#include "pg.h"

#include <ctype.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "log.h"
#include "lp.h"

enum { J_QUERY, J_BATCH, J_ACQUIRE, J_RESET, J_LISTEN };
enum { OP_PREPARE, OP_EXEC };

typedef struct pg_op {
    int kind;    /* OP_PREPARE or OP_EXEC                                   */
    int qi;      /* index of the statement it belongs to                    */
    int got;     /* a result arrived (the NULL that follows ends the op)    */
    unsigned id; /* OP_PREPARE: the statement id, forgotten if Parse fails  */
} pg_op;

typedef struct pg_job pg_job;
struct pg_job {
    pg_job *next;        /* wait queue or ready list                          */
    int kind;            /* J_*                                               */
    int n;               /* statements                                        */
    lp_pg_query_spec *q; /* n statements, strings copied into this allocation */
    PGresult **res;      /* n results                                         */
    pg_op *ops;          /* up to 2n: Parse and Execute per statement         */
    int nops, op;        /* ops sent, op now receiving                        */
    int status;          /* first error (LP_EQUERY) or 0                      */
    int aborted;         /* a statement came back PGRES_PIPELINE_ABORTED      */
    int sync;            /* a Sync follows its statements (else a later job's) */
    int solo;            /* never shares a Sync (sent again after a group failed) */
    int commit_failed;   /* the error came at the Sync: the commit failed     */
    double deadline;     /* wait queue deadline (lp_now_ms)                   */
    int run_timeout_ms;  /* client-side guard once sent, 0 = none             */
    int listen_upto;     /* J_LISTEN: channels covered                        */
    lp_pg_conn *granted; /* J_ACQUIRE: the slot pinned for it                 */
    lp_pg_cb qcb;
    lp_pg_batch_cb bcb;
    lp_pg_acquire_cb acb;
    void *data;
};

typedef struct pg_stmt {
    uint64_t hash;
    char *sql;
    unsigned id;       /* statement name is "lp<id>"                              */
    char name[16];     /* "lp<id>", formatted once                               */
    pg_job *preparing; /* the job whose Parse is unanswered, NULL once prepared  */
    int plain;         /* plain_select(sql), worked out once                     */
} pg_stmt;

struct lp_pg_conn {
    lp_pg_pool *pool;
    int resolving;   /* waits for the pool's host name lookup              */
    PGconn *pg;      /* NULL while down                                     */
    uv_poll_t *poll; /* heap: closed and freed independently of the slot     */
    int poll_fd;
    int poll_events;
    uv_timer_t timer; /* connect timeout, backoff or the running job's guard  */
    int connecting;   /* PQconnectPoll in progress                           */
    int pinned;       /* handed out by lp_pg_acquire                         */
    int want_write;   /* PQflush left data in libpq's buffer                 */
    int failed;       /* broke inside an API call: handled by the defer timer */
    int ever_connected;
    int attempts; /* failed connects in a row (backoff)                  */
    int listener; /* the LISTEN slot                                     */
    int sent;     /* a job went out in this loop iteration               */
    int corked;   /* TCP_CORK set: later jobs wait for the pool's flush   */
    int nocork;   /* the socket refused TCP_CORK (a unix socket)          */
    pg_job *job;  /* in flight, oldest first, linked by next              */
    pg_job *job_tail;
    pg_job *recv;        /* the job results arrive for: job, or behind it in a group */
    int open;            /* jobs sent since the last Sync: they will share the next  */
    int inflight;        /* jobs in flight: more than one only when multiplexed */
    uint64_t head_since; /* uv_now when recv became the job receiving       */
    uint64_t guard_due;  /* when `timer` fires as the run guard, 0 if it is not */
    pg_stmt stmts[LP_PG_STMT_CACHE];
    int nstmts;
    unsigned next_stmt_id;
};

typedef struct pg_listen_entry pg_listen_entry;
struct pg_listen_entry {
    pg_listen_entry *next;
    unsigned long id;
    char *channel;
    lp_pg_notify_cb cb; /* NULL once unlistened (swept outside delivery)       */
    void *data;
};

struct lp_pg_pool {
    uv_loop_t *loop;
    const lp_config *cfg;
    const char *kw[8]; /* connection keywords/values for PQconnectStartParams */
    const char *vals[8];
    char *url;
    char *options;
    int size;
    int depth;         /* jobs in flight per connection (DB_PIPELINE_DEPTH)    */
    int pack;          /* DB_PIPELINE_PACK: jobs to queue before spreading     */
    lp_pg_conn *slots; /* size pool slots + 1 listen slot                     */
    pg_job *qhead, *qtail;
    int nwaiting;
    pg_job *ready; /* acquire grants and failures to report from `defer`   */
    uv_timer_t wait_timer;
    double wait_due; /* when wait_timer fires, 0 when stopped               */
    uv_timer_t defer;
    uv_prepare_t flush; /* before the loop waits: group Syncs out, uncork   */
    int flushing;       /* flush is started                                 */
    int down;           /* a connect failed and nothing is open                */
    int closing;
    int handles;    /* open uv handles; the pool is freed when 0           */
    int pinned_out; /* pinned slots not yet released                       */
    unsigned long errors, reconnects, coalesced, shared;
    /* LISTEN */
    pg_listen_entry *listeners;
    unsigned long next_listen_id;
    int delivering; /* inside notify callbacks: unlisten only marks         */
    char **channels;
    int nchannels, channels_cap;
    int nlistened; /* channels[0..nlistened) are LISTENed on the connection */
    /* Host name lookup, off the loop (libpq's own getaddrinfo would block
     * it): `resolve` is the URL's host when it is a name, NULL when it is an
     * address or a socket directory. The addresses found are tried in turn
     * (one per connect, the next after a failure), passed as hostaddr. */
    char *resolve;
    char addrs[LP_PG_MAX_ADDRS][64];
    int naddrs, addr_next;
    uint64_t addrs_at;        /* uv_now of the lookup that found them     */
    uv_getaddrinfo_t *lookup; /* in flight, or NULL                      */
    unsigned long lookups;    /* lookups finished */
    char addr[64];            /* the hostaddr of the connect being set up */
};

static void slot_connect(lp_pg_conn *c);
static void slot_broken(lp_pg_conn *c, int status);
static void slot_idle(lp_pg_conn *c);
static void slot_recycle(lp_pg_conn *c);
static void pump(lp_pg_pool *p);
static void listen_sync(lp_pg_pool *p);
static void kick(lp_pg_pool *p);
static int close_group(lp_pg_conn *c);
static int watch_connected(lp_pg_conn *c);

/* ---- small helpers ------------------------------------------------------ */

/* Stops the slot's timer, whichever of its jobs (connect timeout, backoff,
 * run guard) it had. */
static void timer_stop(lp_pg_conn *c)
{
    uv_timer_stop(&c->timer);
    c->guard_due = 0;
}

static uint64_t hash_sql(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a: fast, and the text is compared anyway */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static lp_pg_conn *listen_slot(lp_pg_pool *p)
{
    return &p->slots[p->size];
}

static int slot_ready(const lp_pg_conn *c)
{
    return c->pg != NULL && !c->connecting && !c->failed;
}

static int pool_open_count(const lp_pg_pool *p)
{
    int n = 0;
    for (int i = 0; i < p->size; i++)
        n += slot_ready(&p->slots[i]);
    return n;
}

static void kick(lp_pg_pool *p);

/* ---- jobs --------------------------------------------------------------- */

/* One allocation: the job, its statement copies, result and op arrays. */
static pg_job *job_new(int kind, const lp_pg_query_spec *q, int n)
{
    size_t size = sizeof(pg_job) +
                  (size_t)n * (sizeof(lp_pg_query_spec) + sizeof(PGresult *) + 2 * sizeof(pg_op));
    for (int i = 0; i < n; i++) {
        size += strlen(q[i].sql) + 1 + (size_t)q[i].nparams * sizeof(char *);
        for (int k = 0; k < q[i].nparams; k++)
            if (q[i].params[k] != NULL) size += strlen(q[i].params[k]) + 1;
    }
    pg_job *j = calloc(1, size);
    if (j == NULL) return NULL;
    j->kind = kind;
    j->n = n;
    char *at = (char *)(j + 1);
    j->q = (lp_pg_query_spec *)at;
    at += (size_t)n * sizeof(lp_pg_query_spec);
    j->res = (PGresult **)at;
    at += (size_t)n * sizeof(PGresult *);
    j->ops = (pg_op *)at;
    at += (size_t)n * 2 * sizeof(pg_op);
    for (int i = 0; i < n; i++) { /* pointer arrays first: they stay aligned */
        j->q[i].params = (const char *const *)at;
        j->q[i].nparams = q[i].nparams;
        at += (size_t)q[i].nparams * sizeof(char *);
    }
    for (int i = 0; i < n; i++) {
        const char **params = (const char **)j->q[i].params;
        for (int k = 0; k < q[i].nparams; k++) {
            if (q[i].params[k] == NULL) {
                params[k] = NULL;
                continue;
            }
            size_t len = strlen(q[i].params[k]) + 1;
            memcpy(at, q[i].params[k], len);
            params[k] = at;
            at += len;
        }
        size_t len = strlen(q[i].sql) + 1;
        memcpy(at, q[i].sql, len);
        j->q[i].sql = at;
        at += len;
    }
    return j;
}

static int spec_valid(const lp_pg_query_spec *q, int n)
{
    if (q == NULL || n <= 0 || n > 10000) return 0;
    for (int i = 0; i < n; i++) {
        if (q[i].sql == NULL || q[i].nparams < 0 || q[i].nparams > 65535) return 0;
        if (q[i].nparams > 0 && q[i].params == NULL) return 0;
    }
    return 1;
}

/* Runs the job's callback with status; results are handed over (status 0 or
 * LP_EQUERY) or cleared. Frees the job. */
static void job_finish(lp_pg_pool *p, pg_job *j, int status)
{
    if (status != 0 && status != LP_EQUERY) {
        for (int i = 0; i < j->n; i++) {
            PQclear(j->res[i]);
            j->res[i] = NULL;
        }
        if (j->kind != J_RESET && j->kind != J_LISTEN) p->errors++;
    }
    switch (j->kind) {
    case J_QUERY:
        j->qcb(status, j->res[0], j->data);
        break;
    case J_BATCH:
        j->bcb(status, j->res, j->n, j->data);
        break;
    case J_ACQUIRE:
        j->acb(status, status == 0 ? j->granted : NULL, j->data);
        break;
    default: /* internal: nobody to tell */
        for (int i = 0; i < j->n; i++)
            PQclear(j->res[i]);
    }
    free(j);
}

/* ---- wait queue --------------------------------------------------------- */

static void on_wait_timer(uv_timer_t *t);

static void wait_timer_arm(lp_pg_pool *p)
{
    double due = 0;
    for (pg_job *j = p->qhead; j != NULL; j = j->next)
        if (due == 0 || j->deadline < due) due = j->deadline;
    if (due == 0) {
        uv_timer_stop(&p->wait_timer);
        p->wait_due = 0;
        return;
    }
    if (p->wait_due != 0 && p->wait_due <= due) return;
    double ms = due - lp_now_ms();
    uv_timer_start(&p->wait_timer, on_wait_timer, ms > 0 ? (uint64_t)ms + 1 : 0, 0);
    p->wait_due = due;
}

static void enqueue(lp_pg_pool *p, pg_job *j)
{
    j->next = NULL;
    if (p->qtail)
        p->qtail->next = j;
    else
        p->qhead = j;
    p->qtail = j;
    p->nwaiting++;
    /* Deadlines mostly grow in queue order: only an earlier one re-arms, so
     * queueing stays O(1) under load. */
    if (p->wait_due == 0 || j->deadline < p->wait_due) {
        double ms = j->deadline - lp_now_ms();
        uv_timer_start(&p->wait_timer, on_wait_timer, ms > 0 ? (uint64_t)ms + 1 : 0, 0);
        p->wait_due = j->deadline;
    }
}

static pg_job *dequeue(lp_pg_pool *p)
{
    pg_job *j = p->qhead;
    if (j == NULL) return NULL;
    p->qhead = j->next;
    if (p->qhead == NULL) p->qtail = NULL;
    p->nwaiting--;
    j->next = NULL;
    return j;
}

/* Takes every queued job whose deadline passed (or all when `all`), then
 * reports them, so callbacks that queue new work do not disturb the walk. */
static void fail_waiters(lp_pg_pool *p, int status, int all)
{
    double now = lp_now_ms();
    pg_job *failed = NULL, **tail = &failed, *keep = NULL, **ktail = &keep;
    while (p->qhead) {
        pg_job *j = dequeue(p);
        if (all || j->deadline <= now) {
            *tail = j;
            tail = &j->next;
        } else {
            *ktail = j;
            ktail = &j->next;
        }
    }
    for (pg_job *j = keep, *next; j != NULL; j = next) {
        next = j->next;
        j->next = NULL;
        if (p->qtail)
            p->qtail->next = j;
        else
            p->qhead = j;
        p->qtail = j;
        p->nwaiting++;
    }
    p->wait_due = 0;
    uv_timer_stop(&p->wait_timer);
    wait_timer_arm(p);
    for (pg_job *j = failed, *next; j != NULL; j = next) {
        next = j->next;
        job_finish(p, j, status);
    }
}

static void on_wait_timer(uv_timer_t *t)
{
    lp_pg_pool *p = t->data;
    p->wait_due = 0;
    fail_waiters(p, LP_ETIMEDOUT, 0);
}

/* ---- prepared statement cache ------------------------------------------ */

static pg_stmt *stmt_find(lp_pg_conn *c, const char *sql, uint64_t h)
{
    for (int i = 0; i < c->nstmts; i++)
        if (c->stmts[i].hash == h && strcmp(c->stmts[i].sql, sql) == 0) return &c->stmts[i];
    return NULL;
}

/* The answer to a Parse: the statement is usable by every job from now
 * on, or forgotten (it failed or its job aborted before it). */
static void stmt_prepared(lp_pg_conn *c, unsigned id, int ok)
{
    for (int i = 0; i < c->nstmts; i++) {
        if (c->stmts[i].id != id) continue;
        if (ok) {
            c->stmts[i].preparing = NULL;
            return;
        }
        free(c->stmts[i].sql);
        c->stmts[i] = c->stmts[--c->nstmts];
        return;
    }
}

static void stmt_clear(lp_pg_conn *c)
{
    for (int i = 0; i < c->nstmts; i++)
        free(c->stmts[i].sql);
    c->nstmts = 0;
}

/* ---- sockets ------------------------------------------------------------ */

static void on_poll_closed(uv_handle_t *h);
static void on_poll(uv_poll_t *h, int status, int events);

static void poll_close(lp_pg_conn *c)
{
    if (c->poll == NULL) return;
    uv_poll_stop(c->poll); /* before the fd closes: libuv must not watch a dead fd */
    uv_close((uv_handle_t *)c->poll, on_poll_closed);
    c->poll = NULL;
    c->poll_events = 0;
}

/* Watches the connection's socket for events; the socket may change while
 * connecting (libpq retries other addresses), so a new fd gets a new handle. */
static int watch(lp_pg_conn *c, int events)
{
    int fd = PQsocket(c->pg);
    if (fd < 0) return LP_EIO;
    if (c->poll != NULL && c->poll_fd != fd) poll_close(c);
    if (c->poll == NULL) {
        c->poll = malloc(sizeof(*c->poll));
        if (c->poll == NULL) return LP_ENOMEM;
        if (uv_poll_init(c->pool->loop, c->poll, fd) != 0) {
            free(c->poll);
            c->poll = NULL;
            return LP_EIO;
        }
        c->poll->data = c;
        c->pool->handles++;
        c->poll_fd = fd;
        c->poll_events = 0;
    }
    if (events != c->poll_events) {
        if (uv_poll_start(c->poll, events, on_poll) != 0) return LP_EIO;
        c->poll_events = events;
    }
    return 0;
}

static int watch_connected(lp_pg_conn *c)
{
    return watch(c, UV_READABLE | (c->want_write ? UV_WRITABLE : 0));
}

static void pg_close(lp_pg_conn *c)
{
    poll_close(c);
    if (c->pg) PQfinish(c->pg);
    c->pg = NULL;
    c->connecting = 0;
    c->want_write = 0;
    c->failed = 0;
    c->sent = c->corked = c->nocork = c->open = 0;
    stmt_clear(c);
    timer_stop(c);
    if (c->listener) c->pool->nlistened = 0;
}

/* ---- connecting --------------------------------------------------------- */

static void on_reconnect_timer(uv_timer_t *t)
{
    slot_connect(t->data);
}

static void schedule_reconnect(lp_pg_conn *c)
{
    lp_pg_pool *p = c->pool;
    if (p->closing) return;
    uint64_t delay = 0;
    if (c->attempts > 0) {
        int shift = c->attempts - 1 < 5 ? c->attempts - 1 : 5;
        delay = (uint64_t)100 << shift;
        if (delay > LP_PG_BACKOFF_MAX_MS) delay = LP_PG_BACKOFF_MAX_MS;
    }
    uv_timer_start(&c->timer, on_reconnect_timer, delay, 0);
}

static void connect_failed(lp_pg_conn *c)
{
    lp_pg_pool *p = c->pool;
    if (c->pg != NULL && p->naddrs > 1) p->addr_next++; /* the next address, next time */
    pg_close(c);
    p->errors++;
    c->attempts++;
    schedule_reconnect(c);
    if (!c->listener && pool_open_count(p) == 0) {
        p->down = 1; /* nothing to wait for: report at once instead of timing out */
        fail_waiters(p, LP_EUNAVAIL, 1);
    }
}

static void on_connect_timeout(uv_timer_t *t)
{
    connect_failed(t->data);
}

static void connected(lp_pg_conn *c)
{
    lp_pg_pool *p = c->pool;
    timer_stop(c);
    c->connecting = 0;
    if (PQsetnonblocking(c->pg, 1) != 0 || watch_connected(c) != 0) {
        connect_failed(c);
        return;
    }
    if (c->ever_connected) p->reconnects++;
    c->ever_connected = 1;
    c->attempts = 0;
    if (c->listener) {
        listen_sync(p);
        return;
    }
    p->down = 0;
    /* The server is back: the other slots need not sit out their backoff. */
    for (int i = 0; i < p->size; i++) {
        lp_pg_conn *o = &p->slots[i];
        if (o->pg == NULL && !o->pinned && o->attempts > 0) {
            o->attempts = 0;
            schedule_reconnect(o);
        }
    }
    pump(p);
}

static void connect_step(lp_pg_conn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (watch(c, UV_READABLE) != 0) connect_failed(c);
        break;
    case PGRES_POLLING_WRITING:
        if (watch(c, UV_WRITABLE) != 0) connect_failed(c);
        break;
    case PGRES_POLLING_OK:
        connected(c);
        break;
    default:
        connect_failed(c);
    }
}

/* ---- host name lookup ------------------------------------------------------ */

static void maybe_free(lp_pg_pool *p);

/* The slots waiting for the lookup go on: with the addresses found or, when
 * the name stopped resolving, the last ones (for another TTL); with none,
 * as a failed connect (backoff, then a new lookup). */
static void lookup_ended(lp_pg_pool *p)
{
    p->addrs_at = uv_now(p->loop);
    for (int i = 0; i <= p->size; i++) {
        lp_pg_conn *c = &p->slots[i];
        if (!c->resolving) continue;
        c->resolving = 0;
        if (p->naddrs > 0)
            slot_connect(c);
        else
            connect_failed(c);
    }
}

static void on_lookup(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    lp_pg_pool *p = req->data;
    free(req);
    p->lookup = NULL;
    p->handles--;
    p->lookups++;
    if (p->closing) {
        uv_freeaddrinfo(res);
        maybe_free(p);
        return;
    }
    int n = 0;
    for (struct addrinfo *a = res; status == 0 && a != NULL && n < LP_PG_MAX_ADDRS; a = a->ai_next)
        if (lp_ip_name(a->ai_addr, p->addrs[n], sizeof(p->addrs[n])) == 0 &&
            (n == 0 || strcmp(p->addrs[n], p->addrs[n - 1]) != 0))
            n++;
    uv_freeaddrinfo(res);
    if (n > 0) {
        p->naddrs = n;
        p->addr_next = 0;
    } else {
        lp_logf("warn", "database host %s: %s", p->resolve,
                status != 0 ? uv_strerror(status) : "no address");
    }
    lookup_ended(p);
}

static void start_lookup(lp_pg_pool *p)
{
    if (p->lookup != NULL) return;
    uv_getaddrinfo_t *req = calloc(1, sizeof(*req));
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (req == NULL) goto failed;
    req->data = p;
    if (uv_getaddrinfo(p->loop, req, on_lookup, p->resolve, NULL, &hints) != 0) {
        free(req);
        goto failed;
    }
    p->lookup = req;
    p->handles++;
    return;
failed:
    lookup_ended(p);
}

/* The URL's host when libpq would look it up by name, else NULL: an
 * address, a socket directory, a hostaddr given, or a list of hosts (left
 * to libpq). PGHOST/PGHOSTADDR stand in for what the URL leaves out. */
static char *host_to_resolve(const char *url)
{
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    if (opts == NULL) return NULL;
    const char *host = NULL, *hostaddr = NULL;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "host") == 0 && o->val != NULL && *o->val) host = o->val;
        if (strcmp(o->keyword, "hostaddr") == 0 && o->val != NULL && *o->val) hostaddr = o->val;
    }
    if (host == NULL) host = getenv("PGHOST");
    if (hostaddr == NULL) hostaddr = getenv("PGHOSTADDR");
    char *out = NULL;
    if (host != NULL && *host && (hostaddr == NULL || !*hostaddr) && host[0] != '/' &&
        host[0] != '@' && strchr(host, ',') == NULL && !lp_is_ip(host))
        out = strdup(host);
    PQconninfoFree(opts);
    return out;
}

static void quiet_notice(void *arg, const char *message) {}

static void slot_connect(lp_pg_conn *c)
{
    lp_pg_pool *p = c->pool;
    if (p->closing || c->pg != NULL || c->resolving) return;
    if (p->resolve != NULL) {
        if (p->naddrs == 0 || uv_now(p->loop) - p->addrs_at > LP_PG_DNS_TTL_MS) {
            c->resolving = 1;
            start_lookup(p);
            return;
        }
        snprintf(p->addr, sizeof(p->addr), "%s", p->addrs[p->addr_next % p->naddrs]);
    }
    c->pg = PQconnectStartParams(p->kw, p->vals, 1); /* copies them: p->addr may change */
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
        connect_failed(c);
        return;
    }
    /* libpq prints notices (and an idle connection's FATAL) to stderr by
     * default; the pool reports through results and stats instead. */
    PQsetNoticeProcessor(c->pg, quiet_notice, NULL);
    c->connecting = 1;
    uv_timer_start(&c->timer, on_connect_timeout, (uint64_t)p->cfg->db_connect_timeout_ms, 0);
    /* libpq: behave as if PQconnectPoll had just returned PGRES_POLLING_WRITING */
    if (watch(c, UV_WRITABLE) != 0) connect_failed(c);
}

/* ---- running jobs ------------------------------------------------------- */

/* Detaches every in-flight job from c (oldest first). */
static pg_job *take_jobs(lp_pg_conn *c)
{
    pg_job *j = c->job;
    c->job = c->job_tail = c->recv = NULL;
    c->inflight = c->open = 0;
    return j;
}

/* The run guard is armed lazily: a job that starts receiving only notes
 * when (guard_recv), and the timer, armed for the earliest deadline it has
 * been told of, checks the job receiving when it fires and re-arms itself
 * if that job still has time. */
static void on_run_timeout(uv_timer_t *t)
{
    lp_pg_conn *c = t->data;
    c->guard_due = 0;
    if (c->recv == NULL || c->recv->run_timeout_ms <= 0) return;
    uint64_t due = c->head_since + (uint64_t)c->recv->run_timeout_ms, now = uv_now(c->pool->loop);
    if (now < due) {
        uv_timer_start(t, on_run_timeout, due - now, 0);
        c->guard_due = due;
        return;
    }
    slot_broken(c, LP_ETIMEDOUT);
}

/* Starts the client-side guard for the job now receiving. */
static void guard_recv(lp_pg_conn *c)
{
    uint64_t now = uv_now(c->pool->loop);
    c->head_since = now;
    if (c->recv == NULL || c->recv->run_timeout_ms <= 0) return;
    uint64_t due = now + (uint64_t)c->recv->run_timeout_ms;
    if (c->guard_due != 0 && c->guard_due <= due) return; /* it fires first, then checks */
    uv_timer_start(&c->timer, on_run_timeout, (uint64_t)c->recv->run_timeout_ms, 0);
    c->guard_due = due;
}

/* ---- write coalescing and shared Syncs ----------------------------------
 *
 * libpq 15's PQpipelineSync always flushes, so every job is one send(): on
 * loopback each is a packet delivered and a backend woken. The first job of
 * a loop iteration on a connection goes out at once; when a second follows
 * in the same iteration the socket is corked (TCP_CORK), so the rest only
 * fill the socket buffer, and `flush` (a prepare handle: it runs before the
 * loop next blocks in poll) uncorks: one packet, one wake-up for all of
 * them. Nothing waits longer than the loop iteration that sent it (the
 * kernel's own ceiling is 200 ms). Sockets that refuse TCP_CORK (unix
 * sockets) are left alone.
 *
 * Reads go further. A job whose statements are all plain SELECTs (see
 * plain_select) gets no Sync of its own: the jobs of one iteration share
 * the one `flush` sends (up to LP_PG_SHARE_MAX a Sync), so they are one
 * implicit transaction and the server commits, answers ReadyForQuery and
 * flushes once for all of them; nothing leaves libpq's buffer (nor is the
 * socket corked) until then. A lone request loses nothing: its iteration
 * ends as soon as its handler waits. Each job's results are kept until
 * that Sync confirms the commit. If any statement in such a group fails,
 * the transaction took every job in it down: the failing job gets its
 * error, and every other job is queued again (first in line) to run alone
 * with its own Sync, as if the group had never formed. */
static void on_flush(uv_prepare_t *h)
{
    lp_pg_pool *p = h->data;
    int off = 0;
    for (int i = 0; i <= p->size; i++) {
        lp_pg_conn *c = &p->slots[i];
        if (c->open > 0 && c->pg != NULL && !c->failed) {
            int ok = close_group(c);
            if (ok) {
                int r = PQflush(c->pg);
                ok = r >= 0;
                c->want_write = r == 1;
            }
            if (!ok || watch_connected(c) != 0) {
                c->failed = 1;
                kick(p);
            }
        }
        if (c->corked && c->pg != NULL)
            setsockopt(PQsocket(c->pg), IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
        c->corked = c->sent = 0;
    }
    uv_prepare_stop(h);
    p->flushing = 0;
}

static void flush_soon(lp_pg_pool *p)
{
    if (!p->flushing) {
        uv_prepare_start(&p->flush, on_flush);
        p->flushing = 1;
    }
}

/* Notes that c sent in this iteration, corking its socket from the second
 * job on, and makes sure `flush` runs before the loop waits. */
static void cork(lp_pg_conn *c)
{
    lp_pg_pool *p = c->pool;
    if (p->closing) return;
    if (c->corked) {
        p->coalesced++;
    } else if (c->sent && !c->nocork) {
        int on = 1;
        if (setsockopt(PQsocket(c->pg), IPPROTO_TCP, TCP_CORK, &on, sizeof(on)) == 0) {
            c->corked = 1;
            p->coalesced++;
        } else
            c->nocork = 1;
    }
    c->sent = 1;
    flush_soon(p);
}

/* Sends the Sync that ends the open group (libpq flushes it). */
static int close_group(lp_pg_conn *c)
{
    c->open = 0;
    c->job_tail->sync = 1;
    return PQpipelineSync(c->pg);
}

static int word_is(const char *w, size_t n, const char *kw)
{
    return strlen(kw) == n && strncasecmp(w, kw, n) == 0;
}

/* A statement that may share a Sync: it starts with SELECT and has no
 * locking clause (FOR UPDATE/SHARE), no INTO, no second command. Anything
 * else — writes, WITH (it may hold one), row locks — keeps its own Sync, so
 * neither its locks nor its commit wait for other requests. The test is by
 * words, quotes ignored: a "for" inside a literal only costs the sharing. */
static int plain_select(const char *sql)
{
    const char *s = sql;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '(')
        s++;
    if (strncasecmp(s, "select", 6) != 0 || isalnum((unsigned char)s[6]) || s[6] == '_') return 0;
    for (s += 6; *s;) {
        if (*s == ';') return 0;
        if (!isalpha((unsigned char)*s) && *s != '_') {
            s++;
            continue;
        }
        const char *w = s;
        while (isalnum((unsigned char)*s) || *s == '_' || *s == '$')
            s++;
        size_t n = (size_t)(s - w);
        if (word_is(w, n, "for") || word_is(w, n, "into")) return 0;
    }
    return 1;
}

/* May j share a Sync? Every statement must be a plain SELECT (the cached
 * verdict when the text is prepared here; s0 is the first one's entry). */
static int shareable(lp_pg_conn *c, const pg_job *j, const pg_stmt *s0)
{
    if ((j->kind != J_QUERY && j->kind != J_BATCH) || j->solo || c->pinned || c->listener) return 0;
    for (int i = 0; i < j->n; i++) {
        const char *sql = j->q[i].sql;
        const pg_stmt *s = i == 0 ? s0 : stmt_find(c, sql, hash_sql(sql));
        if (!(s != NULL ? s->plain : plain_select(sql))) return 0;
    }
    return 1;
}

/* Sends every statement of j (Parse only the first time a text is seen on
 * this connection) and a Sync, or no Sync when j joins the open group. A
 * failure marks the slot for the defer timer: callbacks must not run inside
 * the API call that started the job. */
static void job_start(lp_pg_conn *c, pg_job *j)
{
    PGconn *pg = c->pg;
    int first = c->job == NULL;
    uint64_t h0 = hash_sql(j->q[0].sql); /* every job has a statement */
    pg_stmt *s0 = stmt_find(c, j->q[0].sql, h0);
    int share = shareable(c, j, s0);
    int ok = 1;
    if (share) {
        flush_soon(c->pool); /* nothing is sent before it */
    } else {
        if (c->open > 0) ok = close_group(c);
        cork(c);
    }
    j->next = NULL;
    j->sync = 0;
    if (first)
        c->job = c->recv = j;
    else
        c->job_tail->next = j;
    c->job_tail = j;
    c->inflight++;
    j->op = 0;
    j->nops = 0;
    /* Pipeline mode only while jobs run: an idle connection in normal mode
     * lets libpq parse what the server says unasked (NOTIFY, FATAL). Each job
     * but shared reads ends with its own Sync, so jobs multiplexed behind it
     * are separate implicit transactions: an error aborts only up to its
     * job's Sync (and a shared group is sent again, job by job). */
    if (ok && first) ok = PQenterPipelineMode(pg) == 1;
    for (int i = 0; i < j->n && ok; i++) {
        const lp_pg_query_spec *q = &j->q[i];
        uint64_t h = i == 0 ? h0 : hash_sql(q->sql);
        pg_stmt *s = i == 0 ? s0 : stmt_find(c, q->sql, h);
        if (s == NULL && c->nstmts < LP_PG_STMT_CACHE) {
            char *copy = strdup(q->sql);
            if (copy != NULL) {
                s = &c->stmts[c->nstmts++];
                s->hash = h;
                s->sql = copy;
                s->id = ++c->next_stmt_id;
                s->preparing = j;
                s->plain = plain_select(copy);
                snprintf(s->name, sizeof(s->name), "lp%u", s->id);
                ok = PQsendPrepare(pg, s->name, q->sql, 0, NULL);
                j->ops[j->nops++] = (pg_op){OP_PREPARE, i, 0, s->id};
                if (!ok) break;
            }
        }
        /* A Parse another job sent may still fail or be skipped (its job
         * aborted before it): run unnamed rather than depend on it. */
        if (s != NULL && s->preparing != NULL && s->preparing != j) s = NULL;
        if (s != NULL) {
            ok = PQsendQueryPrepared(pg, s->name, q->nparams, q->params, NULL, NULL, 0);
        } else {
            ok = PQsendQueryParams(pg, q->sql, q->nparams, NULL, q->params, NULL, NULL, 0);
        }
        j->ops[j->nops++] = (pg_op){OP_EXEC, i, 0, 0};
    }
    int flush = 1;
    if (ok && share) {
        c->open++;
        c->pool->shared++;
        if (c->open >= LP_PG_SHARE_MAX)
            ok = close_group(c);
        else
            flush = 0; /* `flush` sends it with the group's Sync */
    } else if (ok) {
        j->sync = 1;
        ok = PQpipelineSync(pg);
    }
    if (ok && flush) {
        int r = PQflush(pg);
        ok = r >= 0;
        c->want_write = r == 1;
    }
    if (ok) ok = watch_connected(c) == 0; /* no syscall unless the events change */
    if (!ok) {
        c->failed = 1;
        kick(c->pool);
        return;
    }
    if (first) guard_recv(c);
}

/* A client-side deadline, only for a server that stops answering: the
 * server's statement_timeout normally fires first. */
static int run_timeout(const lp_pg_pool *p, int n)
{
    int st = p->cfg->db_statement_timeout_ms;
    return st > 0 ? st * n + 1000 : 0;
}

/* The server ends a session with FATAL or PANIC (shutdown, terminated
 * backend, protocol breakage); an ERROR — even SQLSTATE class 08 such as
 * 08P01 for a Bind with the wrong number of parameters — leaves it usable. */
static int unusable_error(const lp_pg_conn *c, const PGresult *r)
{
    if (PQstatus(c->pg) == CONNECTION_BAD) return 1;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    return sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
}

static void deliver_notifies(lp_pg_conn *c);

/* Puts jobs back at the head of the wait queue, in order, to run alone. */
static void requeue(lp_pg_pool *p, pg_job *list)
{
    if (list == NULL) return;
    pg_job *tail = list;
    double deadline = lp_now_ms() + p->cfg->db_wait_timeout_ms;
    for (pg_job *j = list;; j = j->next) {
        for (int i = 0; i < j->n; i++) {
            PQclear(j->res[i]);
            j->res[i] = NULL;
        }
        j->status = j->aborted = j->commit_failed = 0;
        j->solo = 1;
        j->deadline = deadline;
        p->nwaiting++;
        tail = j;
        if (j->next == NULL) break;
    }
    tail->next = p->qhead;
    p->qhead = list;
    if (p->qtail == NULL) p->qtail = tail;
    wait_timer_arm(p);
}

/* The pipeline reached a Sync: it ends recv and the jobs before it that
 * shared it. Decide the slot's fate, send again what a failed group took
 * down, then report. */
static void job_done(lp_pg_conn *c)
{
    lp_pg_pool *p = c->pool;
    pg_job *group = c->job, *last = c->recv;
    int n = 1, failed = 0;
    for (pg_job *j = group;; j = j->next, n++) {
        failed |= j->status != 0 || j->aborted;
        if (j == last) break;
    }
    c->job = c->recv = last->next;
    if (c->job == NULL) c->job_tail = NULL;
    c->inflight -= n;
    last->next = NULL;
    if (c->job != NULL) { /* multiplexed: the next job is already on the wire */
        guard_recv(c);
    } else {
        timer_stop(c);
        if (PQexitPipelineMode(c->pg) != 1) { /* results we did not expect: not reusable */
            pg_close(c);
            if (!c->pinned) schedule_reconnect(c);
        } else if (c->listener) {
            if (last->status == 0) {
                p->nlistened = last->listen_upto;
                listen_sync(p);
            } else { /* LISTEN refused: retry on a new connection, with backoff */
                pg_close(c);
                c->attempts++;
                schedule_reconnect(c);
            }
        } else if (last->kind == J_RESET && last->status != 0) {
            slot_recycle(c);
        } else if (!c->pinned) {
            slot_idle(c); /* pinned: the holder decides what comes next */
        }
    }
    if (n > 1 && failed) { /* keep the jobs that failed by themselves */
        pg_job *again = NULL, **atail = &again, **keep = &group;
        while (*keep != NULL) {
            pg_job *j = *keep;
            if (j->status == LP_EQUERY && !j->commit_failed) {
                keep = &j->next;
                continue;
            }
            *keep = j->next;
            j->next = NULL;
            *atail = j;
            atail = &j->next;
        }
        requeue(p, again);
    }
    if (!c->listener) pump(p); /* waiters first: a callback queueing new work goes behind them */
    for (pg_job *j = group, *next; j != NULL; j = next) {
        next = j->next;
        job_finish(p, j, j->status);
    }
}

/* Reads every result available, routing them to the in-flight jobs in the
 * order they were sent; each Sync finishes the jobs up to it. */
static void process_results(lp_pg_conn *c)
{
    while (c->pg != NULL && c->recv != NULL) {
        pg_job *j = c->recv;
        if (j->op == j->nops && !j->sync) { /* answered: waits for a later job's Sync */
            if (j->next == NULL) break;     /* the group is still open */
            c->recv = j->next;
            guard_recv(c);
            continue;
        }
        if (PQisBusy(c->pg)) break;
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) {
            if (j->op < j->nops && j->ops[j->op].got) {
                j->op++;
                continue;
            }
            if (j->commit_failed == 1) { /* the end of the commit's error */
                j->commit_failed = 2;
                continue;
            }
            break;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            if (j->op < j->nops || !j->sync) { /* a Sync we did not send here */
                slot_broken(c, LP_EUNAVAIL);
                return;
            }
            job_done(c); /* callbacks may start, release or close: re-check */
            continue;
        }
        if (j->op >= j->nops) {
            /* After the last statement only the commit can fail (a deferred
             * constraint, a serialization failure): the job's error. */
            if (st == PGRES_FATAL_ERROR && j->sync && !j->commit_failed && !unusable_error(c, r)) {
                int last = j->n - 1;
                PQclear(j->res[last]);
                j->res[last] = r;
                j->status = LP_EQUERY;
                j->commit_failed = 1;
                continue;
            }
            PQclear(r); /* more results than statements: not ours */
            slot_broken(c, LP_EUNAVAIL);
            return;
        }
        pg_op *op = &j->ops[j->op];
        op->got = 1;
        int failed = st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK;
        if (op->kind == OP_PREPARE) stmt_prepared(c, op->id, st == PGRES_COMMAND_OK);
        if (failed && st != PGRES_PIPELINE_ABORTED && unusable_error(c, r)) {
            PQclear(r);
            slot_broken(c, LP_EUNAVAIL);
            return;
        }
        if (st == PGRES_PIPELINE_ABORTED) j->aborted = 1;
        if (failed && st != PGRES_PIPELINE_ABORTED && j->status == 0) j->status = LP_EQUERY;
        /* Keep the first meaningful result per statement: a failed Parse's
         * error, not the "aborted" of the Execute that follows it. */
        if (op->kind == OP_EXEC && j->res[op->qi] == NULL)
            j->res[op->qi] = r;
        else if (op->kind == OP_PREPARE && failed && st != PGRES_PIPELINE_ABORTED)
            j->res[op->qi] = r;
        else
            PQclear(r);
    }
    if (c->pg != NULL && PQstatus(c->pg) == CONNECTION_BAD) slot_broken(c, LP_EUNAVAIL);
}

/* A connection with nothing in flight must have nothing to say: anything
 * other than a NOTIFY on the listen slot means it is not in a state we know. */
static void check_quiet(lp_pg_conn *c)
{
    if (c->listener) {
        deliver_notifies(c);
        if (c->pg == NULL) return;
    }
    PGnotify *n = PQnotifies(c->pg);
    PGresult *r = NULL;
    if (n == NULL && !PQisBusy(c->pg)) r = PQgetResult(c->pg);
    if (n != NULL || r != NULL || PQstatus(c->pg) == CONNECTION_BAD) {
        PQfreemem(n);
        PQclear(r);
        slot_broken(c, LP_EUNAVAIL);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    lp_pg_conn *c = h->data;
    if (c == NULL || c->failed) return;
    if (c->connecting) {
        connect_step(c); /* PQconnectPoll finds any socket error itself */
        return;
    }
    if (status < 0) {
        slot_broken(c, LP_EUNAVAIL);
        return;
    }
    if ((events & UV_READABLE) && !PQconsumeInput(c->pg)) {
        slot_broken(c, LP_EUNAVAIL);
        return;
    }
    if (c->want_write) {
        int r = PQflush(c->pg);
        if (r < 0) {
            slot_broken(c, LP_EUNAVAIL);
            return;
        }
        c->want_write = r == 1;
        if (watch_connected(c) != 0) {
            slot_broken(c, LP_EUNAVAIL);
            return;
        }
    }
    if (c->listener) deliver_notifies(c);
    if (c->pg == NULL) return;
    if (c->job != NULL)
        process_results(c);
    else
        check_quiet(c);
}

/* The connection can no longer be trusted: fail what it was doing, drop it
 * and reconnect (at once the first time, then with backoff). A pinned slot
 * stays pinned and dead until its holder releases it. */
static void slot_broken(lp_pg_conn *c, int status)
{
    lp_pg_pool *p = c->pool;
    pg_job *j = take_jobs(c);
    p->errors++;
    pg_close(c);
    if (!c->pinned) schedule_reconnect(c);
    /* the job at the head met the failure; those behind it lost their
     * connection */
    for (pg_job *next; j != NULL; j = next, status = LP_EUNAVAIL) {
        next = j->next;
        job_finish(p, j, status);
    }
}

/* Drops a healthy connection that cannot be reused and opens a new one. */
static void slot_recycle(lp_pg_conn *c)
{
    pg_close(c);
    c->attempts = 0;
    schedule_reconnect(c);
}

/* An unpinned slot came free: back to the pool when it is clean, after a
 * ROLLBACK when a transaction was left open, else closed. */
static void slot_idle(lp_pg_conn *c)
{
    switch (PQtransactionStatus(c->pg)) {
    case PQTRANS_IDLE: {
        PGnotify *n = PQnotifies(c->pg); /* nobody LISTENs on a pool connection */
        if (n == NULL) return;
        PQfreemem(n);
        slot_recycle(c);
        return;
    }
    case PQTRANS_INTRANS: {
        lp_pg_query_spec q = {"ROLLBACK", 0, NULL};
        pg_job *j = job_new(J_RESET, &q, 1);
        if (j == NULL) {
            slot_recycle(c);
            return;
        }
        j->run_timeout_ms = run_timeout(c->pool, 1);
        job_start(c, j);
        return;
    }
    default:
        slot_recycle(c);
    }
}

/* Can a query or batch be pipelined behind c's work? Below the pipeline
 * depth, behind queries and batches only (never a pinned slot, the listener
 * or one rolling back), and not behind a statement that has run for
 * LP_PG_MUX_STALL_MS: work behind it would wait for it. */
static int can_mux(const lp_pg_pool *p, const lp_pg_conn *c, uint64_t now)
{
    return c->inflight < p->depth && (c->job->kind == J_QUERY || c->job->kind == J_BATCH) &&
           now - c->head_since < LP_PG_MUX_STALL_MS;
}

/* Where a job goes: an idle slot; else (queries and batches only) the least
 * busy connection that can take one more; else NULL (the job waits in the
 * queue and its timeout). With DB_PIPELINE_PACK > 0 queries and batches are
 * packed first: onto the busiest connection with fewer than that many jobs
 * in flight, behind a head sent less than LP_PG_PACK_STALL_MS ago. A server
 * that shares a few cores with its clients then wakes a few backends that
 * each read several statements per wake-up, instead of every backend waking
 * for one (fewer context switches, more throughput); a server with cores to
 * spare is better served by spreading, the default. */
static lp_pg_conn *pick_slot(lp_pg_pool *p, int kind)
{
    int mux = kind == J_QUERY || kind == J_BATCH;
    uint64_t now = uv_now(p->loop);
    lp_pg_conn *idle = NULL, *pack = NULL, *least = NULL;
    for (int i = 0; i < p->size; i++) {
        lp_pg_conn *c = &p->slots[i];
        if (!slot_ready(c) || c->pinned) continue;
        if (c->job == NULL) {
            if (!mux || p->pack <= 0) return c;
            if (idle == NULL) idle = c;
            continue;
        }
        if (!mux || !can_mux(p, c, now)) continue;
        if (c->inflight < p->pack && now - c->head_since < LP_PG_PACK_STALL_MS &&
            (pack == NULL || c->inflight > pack->inflight))
            pack = c;
        if (least == NULL || c->inflight < least->inflight) least = c;
    }
    return pack != NULL ? pack : idle != NULL ? idle : least;
}

/* Hands idle slots to waiters in FIFO order. Sends at once; grants to
 * acquirers are reported from the defer timer. */
static void pump(lp_pg_pool *p)
{
    if (p->closing) return;
    lp_pg_conn *c;
    while (p->qhead != NULL && (c = pick_slot(p, p->qhead->kind)) != NULL) {
        pg_job *j = dequeue(p);
        if (j->kind == J_ACQUIRE) {
            c->pinned = 1;
            p->pinned_out++;
            j->granted = c;
            j->next = p->ready;
            p->ready = j;
            kick(p);
        } else {
            job_start(c, j);
        }
    }
    if (p->qhead == NULL) {
        uv_timer_stop(&p->wait_timer);
        p->wait_due = 0;
    }
}

static void on_defer(uv_timer_t *t)
{
    lp_pg_pool *p = t->data;
    for (int i = 0; i <= p->size; i++) {
        lp_pg_conn *c = &p->slots[i];
        if (c->failed) {
            c->failed = 0;
            slot_broken(c, LP_EUNAVAIL);
        }
    }
    /* grants were pushed LIFO; report in the order they were made */
    pg_job *rev = NULL;
    while (p->ready) {
        pg_job *j = p->ready;
        p->ready = j->next;
        j->next = rev;
        rev = j;
    }
    while (rev) {
        pg_job *j = rev;
        rev = j->next;
        job_finish(p, j, j->status);
    }
    if (!p->closing && p->qhead != NULL) pump(p);
}

static void kick(lp_pg_pool *p)
{
    if (!p->closing) uv_timer_start(&p->defer, on_defer, 0, 0);
}

/* Starts j now if a slot is free, else queues it; fails fast while down. */
static int submit(lp_pg_pool *p, pg_job *j, int wait_ms)
{
    if (p->closing) {
        free(j);
        return LP_ECLOSED;
    }
    if (p->down) {
        free(j);
        p->errors++;
        return LP_EUNAVAIL;
    }
    j->deadline = lp_now_ms() + wait_ms;
    lp_pg_conn *c;
    if (p->qhead == NULL && (c = pick_slot(p, j->kind)) != NULL) {
        if (j->kind == J_ACQUIRE) {
            c->pinned = 1;
            p->pinned_out++;
            j->granted = c;
            j->next = p->ready;
            p->ready = j;
            kick(p);
        } else {
            job_start(c, j);
        }
        return 0;
    }
    if (p->nwaiting >= LP_PG_MAX_WAITING) {
        free(j);
        p->errors++;
        return LP_EBUSY;
    }
    enqueue(p, j);
    return 0;
}

/* ---- public API --------------------------------------------------------- */

int lp_pg_query(lp_pg_pool *p, const char *sql, int nparams, const char *const *params, lp_pg_cb cb,
                void *data)
{
    lp_pg_query_spec q = {sql, nparams, params};
    if (p == NULL || cb == NULL || !spec_valid(&q, 1)) return LP_EINVAL;
    pg_job *j = job_new(J_QUERY, &q, 1);
    if (j == NULL) return LP_ENOMEM;
    j->qcb = cb;
    j->data = data;
    j->run_timeout_ms = run_timeout(p, 1);
    return submit(p, j, p->cfg->db_wait_timeout_ms);
}

int lp_pg_batch(lp_pg_pool *p, const lp_pg_query_spec *q, int n, lp_pg_batch_cb cb, void *data)
{
    if (p == NULL || cb == NULL || !spec_valid(q, n)) return LP_EINVAL;
    pg_job *j = job_new(J_BATCH, q, n);
    if (j == NULL) return LP_ENOMEM;
    j->bcb = cb;
    j->data = data;
    j->run_timeout_ms = run_timeout(p, n);
    return submit(p, j, p->cfg->db_wait_timeout_ms);
}

int lp_pg_acquire(lp_pg_pool *p, lp_pg_acquire_cb cb, void *data)
{
    if (p == NULL || cb == NULL) return LP_EINVAL;
    pg_job *j = job_new(J_ACQUIRE, NULL, 0);
    if (j == NULL) return LP_ENOMEM;
    j->acb = cb;
    j->data = data;
    return submit(p, j, p->cfg->db_wait_timeout_ms);
}

int lp_pg_ping(lp_pg_pool *p, lp_pg_cb cb, void *data)
{
    lp_pg_query_spec q = {"SELECT 1", 0, NULL};
    if (p == NULL || cb == NULL) return LP_EINVAL;
    pg_job *j = job_new(J_QUERY, &q, 1);
    if (j == NULL) return LP_ENOMEM;
    j->qcb = cb;
    j->data = data;
    j->run_timeout_ms = LP_PG_PING_TIMEOUT_MS;
    return submit(p, j, LP_PG_PING_TIMEOUT_MS);
}

static int conn_submit(lp_pg_conn *c, pg_job *j)
{
    int err = 0;
    if (!c->pinned)
        err = LP_EINVAL;
    else if (c->pool->closing)
        err = LP_ECLOSED;
    else if (c->job != NULL)
        err = LP_EBUSY;
    else if (!slot_ready(c))
        err = LP_EUNAVAIL;
    if (err != 0) {
        free(j);
        return err;
    }
    job_start(c, j);
    return 0;
}

int lp_pg_conn_query(lp_pg_conn *c, const char *sql, int nparams, const char *const *params,
                     lp_pg_cb cb, void *data)
{
    lp_pg_query_spec q = {sql, nparams, params};
    if (c == NULL || cb == NULL || !spec_valid(&q, 1)) return LP_EINVAL;
    pg_job *j = job_new(J_QUERY, &q, 1);
    if (j == NULL) return LP_ENOMEM;
    j->qcb = cb;
    j->data = data;
    j->run_timeout_ms = run_timeout(c->pool, 1);
    return conn_submit(c, j);
}

int lp_pg_conn_batch(lp_pg_conn *c, const lp_pg_query_spec *q, int n, lp_pg_batch_cb cb, void *data)
{
    if (c == NULL || cb == NULL || !spec_valid(q, n)) return LP_EINVAL;
    pg_job *j = job_new(J_BATCH, q, n);
    if (j == NULL) return LP_ENOMEM;
    j->bcb = cb;
    j->data = data;
    j->run_timeout_ms = run_timeout(c->pool, n);
    return conn_submit(c, j);
}

static void maybe_free(lp_pg_pool *p);

void lp_pg_release(lp_pg_conn *c)
{
    if (c == NULL || !c->pinned) return;
    lp_pg_pool *p = c->pool;
    c->pinned = 0;
    p->pinned_out--;
    if (p->closing) {
        maybe_free(p);
        return;
    }
    if (c->pg == NULL) { /* broke while pinned */
        schedule_reconnect(c);
        return;
    }
    if (c->job != NULL || c->failed) {
        /* still talking: the answer would arrive on a reused connection */
        pg_job *j = take_jobs(c);
        slot_recycle(c);
        for (pg_job *next; j != NULL; j = next) {
            next = j->next;
            j->status = LP_ECLOSED;
            j->next = p->ready;
            p->ready = j;
            kick(p);
        }
        return;
    }
    slot_idle(c);
    pump(p);
}

/* ---- LISTEN ------------------------------------------------------------- */

static void deliver_notifies(lp_pg_conn *c)
{
    lp_pg_pool *p = c->pool;
    PGnotify *n;
    while (c->pg != NULL && (n = PQnotifies(c->pg)) != NULL) {
        p->delivering++;
        for (pg_listen_entry *e = p->listeners; e != NULL && !p->closing; e = e->next)
            if (e->cb != NULL && strcmp(e->channel, n->relname) == 0)
                e->cb(n->relname, n->extra, e->data);
        p->delivering--;
        PQfreemem(n);
        if (p->closing) return;
    }
    if (p->delivering == 0) { /* sweep entries unlistened during delivery */
        for (pg_listen_entry **pe = &p->listeners; *pe != NULL;) {
            pg_listen_entry *e = *pe;
            if (e->cb != NULL) {
                pe = &e->next;
                continue;
            }
            *pe = e->next;
            free(e->channel);
            free(e);
        }
    }
}

/* LISTENs to every channel the connection does not listen to yet. */
static void listen_sync(lp_pg_pool *p)
{
    lp_pg_conn *c = listen_slot(p);
    if (p->closing || !slot_ready(c) || c->job != NULL || p->nlistened == p->nchannels) return;
    int n = p->nchannels - p->nlistened;
    lp_pg_query_spec *q = calloc((size_t)n, sizeof(*q));
    char **sql = calloc((size_t)n, sizeof(*sql));
    int ok = q != NULL && sql != NULL;
    for (int i = 0; ok && i < n; i++) {
        const char *ch = p->channels[p->nlistened + i];
        char *id = PQescapeIdentifier(c->pg, ch, strlen(ch));
        ok = id != NULL;
        if (ok) {
            sql[i] = malloc(strlen(id) + 8);
            ok = sql[i] != NULL;
            if (ok) sprintf(sql[i], "LISTEN %s", id);
            q[i].sql = sql[i];
        }
        PQfreemem(id);
    }
    pg_job *j = ok ? job_new(J_LISTEN, q, n) : NULL;
    for (int i = 0; sql != NULL && i < n; i++)
        free(sql[i]);
    free(sql);
    free(q);
    if (j == NULL) {
        slot_recycle(c); /* try again on a fresh connection */
        return;
    }
    j->listen_upto = p->nchannels;
    j->run_timeout_ms = run_timeout(p, n);
    job_start(c, j);
}

int lp_pg_listen(lp_pg_pool *p, const char *channel, lp_pg_notify_cb cb, void *data,
                 unsigned long *id)
{
    if (p == NULL || channel == NULL || *channel == '\0' || cb == NULL) return LP_EINVAL;
    if (p->closing) return LP_ECLOSED;
    pg_listen_entry *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->channel = strdup(channel)) == NULL) {
        free(e);
        return LP_ENOMEM;
    }
    int known = 0;
    for (int i = 0; i < p->nchannels && !known; i++)
        known = strcmp(p->channels[i], channel) == 0;
    if (!known) {
        if (p->nchannels == p->channels_cap) {
            int cap = p->channels_cap ? p->channels_cap * 2 : 8;
            char **ch = realloc(p->channels, (size_t)cap * sizeof(*ch));
            if (ch == NULL) goto nomem;
            p->channels = ch;
            p->channels_cap = cap;
        }
        if ((p->channels[p->nchannels] = strdup(channel)) == NULL) goto nomem;
        p->nchannels++;
    }
    e->id = ++p->next_listen_id;
    e->cb = cb;
    e->data = data;
    e->next = p->listeners;
    p->listeners = e;
    if (id != NULL) *id = e->id;
    lp_pg_conn *c = listen_slot(p);
    if (c->pg == NULL && !uv_is_active((uv_handle_t *)&c->timer))
        slot_connect(c);
    else
        listen_sync(p);
    return 0;
nomem:
    free(e->channel);
    free(e);
    return LP_ENOMEM;
}

int lp_pg_unlisten(lp_pg_pool *p, unsigned long id)
{
    if (p == NULL) return LP_EINVAL;
    for (pg_listen_entry **pe = &p->listeners; *pe != NULL; pe = &(*pe)->next) {
        pg_listen_entry *e = *pe;
        if (e->id != id || e->cb == NULL) continue;
        e->cb = NULL;
        if (p->delivering == 0) {
            *pe = e->next;
            free(e->channel);
            free(e);
        }
        return 0;
    }
    return LP_EINVAL;
}

int lp_pg_listening(const lp_pg_pool *p)
{
    const lp_pg_conn *c = &p->slots[p->size];
    return slot_ready(c) && c->job == NULL && p->nlistened == p->nchannels;
}

/* ---- stats, open, close ------------------------------------------------- */

void lp_pg_pool_stats(const lp_pg_pool *p, lp_pg_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->size = p->size;
    for (int i = 0; i < p->size; i++) {
        const lp_pg_conn *c = &p->slots[i];
        out->open += slot_ready(c);
        out->busy += c->pinned || c->job != NULL;
        out->inflight += c->inflight;
        out->corked += c->corked;
    }
    out->waiting = p->nwaiting;
    out->down = p->down;
    out->errors = p->errors;
    out->reconnects = p->reconnects;
    out->coalesced = p->coalesced;
    out->shared = p->shared;
    out->lookups = p->lookups;
}

/* Adds our session settings to any `options` the URL already carries. */
static char *build_options(const char *url, const lp_config *cfg)
{
    char *err = NULL;
    const char *existing = "";
    PQconninfoOption *opts = PQconninfoParse(url, &err);
    if (opts == NULL) {
        PQfreemem(err);
        return NULL;
    }
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, "options") == 0 && o->val != NULL) existing = o->val;
    size_t size = strlen(existing) + 128;
    char *s = malloc(size);
    if (s != NULL)
        snprintf(s, size, "%s%s-c statement_timeout=%d -c TimeZone=UTC -c DateStyle=ISO", existing,
                 *existing ? " " : "", cfg->db_statement_timeout_ms);
    PQconninfoFree(opts);
    return s;
}

int lp_pg_pool_open(lp_pg_pool **out, uv_loop_t *loop, const lp_config *cfg)
{
    if (out == NULL || loop == NULL || cfg == NULL || cfg->db_pool_size < 1) return LP_EINVAL;
    *out = NULL;
    lp_pg_pool *p = calloc(1, sizeof(*p));
    if (p == NULL) return LP_ENOMEM;
    p->loop = loop;
    p->cfg = cfg;
    p->size = cfg->db_pool_size;
    p->depth = cfg->db_pipeline_depth > 0 ? cfg->db_pipeline_depth : 1;
    p->pack = cfg->db_pipeline_pack < p->depth ? cfg->db_pipeline_pack : p->depth;
    p->url = strdup(cfg->database_url);
    p->options = p->url ? build_options(p->url, cfg) : NULL;
    p->slots = calloc((size_t)p->size + 1, sizeof(*p->slots));
    if (p->url == NULL || p->options == NULL || p->slots == NULL) {
        int err = p->url != NULL && p->options == NULL && p->slots != NULL ? LP_EINVAL : LP_ENOMEM;
        free(p->url);
        free(p->options);
        free(p->slots);
        free(p);
        return err;
    }
    /* dbname first: the keywords after it override what the URL says */
    int k = 0;
    p->kw[k] = "dbname", p->vals[k++] = p->url;
    p->kw[k] = "options", p->vals[k++] = p->options;
    p->kw[k] = "application_name", p->vals[k++] = "lifeplan";
    p->kw[k] = "client_encoding", p->vals[k++] = "UTF8";
    p->resolve = host_to_resolve(p->url);
    if (p->resolve != NULL) p->kw[k] = "hostaddr", p->vals[k++] = p->addr;
    p->kw[k] = NULL, p->vals[k] = NULL;

    uv_timer_init(loop, &p->wait_timer);
    uv_timer_init(loop, &p->defer);
    uv_prepare_init(loop, &p->flush);
    p->wait_timer.data = p->defer.data = p->flush.data = p;
    p->handles = 3;
    for (int i = 0; i <= p->size; i++) {
        lp_pg_conn *c = &p->slots[i];
        c->pool = p;
        c->listener = i == p->size;
        uv_timer_init(loop, &c->timer);
        c->timer.data = c;
        p->handles++;
    }
    for (int i = 0; i < p->size; i++)
        slot_connect(&p->slots[i]);
    *out = p;
    return 0;
}

static void maybe_free(lp_pg_pool *p)
{
    if (!p->closing || p->handles > 0 || p->pinned_out > 0) return;
    for (pg_listen_entry *e = p->listeners, *next; e != NULL; e = next) {
        next = e->next;
        free(e->channel);
        free(e);
    }
    for (int i = 0; i < p->nchannels; i++)
        free(p->channels[i]);
    free(p->channels);
    free(p->slots);
    free(p->url);
    free(p->options);
    free(p->resolve);
    free(p);
}

static void on_poll_closed(uv_handle_t *h)
{
    lp_pg_pool *p = ((lp_pg_conn *)h->data)->pool;
    free(h);
    p->handles--;
    maybe_free(p);
}

static void on_slot_timer_closed(uv_handle_t *h)
{
    lp_pg_pool *p = ((lp_pg_conn *)h->data)->pool;
    p->handles--;
    maybe_free(p);
}

static void on_pool_timer_closed(uv_handle_t *h)
{
    lp_pg_pool *p = h->data;
    p->handles--;
    maybe_free(p);
}

void lp_pg_pool_close(lp_pg_pool *p)
{
    if (p == NULL || p->closing) return;
    p->closing = 1;
    fail_waiters(p, LP_ECLOSED, 1);
    while (p->ready) { /* grants nobody saw: the slot was never really handed out */
        pg_job *j = p->ready;
        p->ready = j->next;
        if (j->granted != NULL) {
            j->granted->pinned = 0;
            p->pinned_out--;
            j->granted = NULL;
        }
        job_finish(p, j, LP_ECLOSED);
    }
    for (int i = 0; i <= p->size; i++) {
        lp_pg_conn *c = &p->slots[i];
        pg_job *j = take_jobs(c);
        pg_close(c);
        for (pg_job *next; j != NULL; j = next) {
            next = j->next;
            job_finish(p, j, LP_ECLOSED);
        }
    }
    /* listeners are freed with the pool: a notify callback may be the caller */
    for (pg_listen_entry *e = p->listeners; e != NULL; e = e->next)
        e->cb = NULL;
    if (p->lookup != NULL) uv_cancel((uv_req_t *)p->lookup); /* its callback still runs */
    uv_close((uv_handle_t *)&p->wait_timer, on_pool_timer_closed);
    uv_close((uv_handle_t *)&p->defer, on_pool_timer_closed);
    uv_close((uv_handle_t *)&p->flush, on_pool_timer_closed);
    for (int i = 0; i <= p->size; i++)
        uv_close((uv_handle_t *)&p->slots[i].timer, on_slot_timer_closed);
}

int lp_pg_host_open(lp_host *h)
{
    if (h == NULL || h->pg != NULL) return LP_EINVAL;
    return lp_pg_pool_open(&h->pg, h->loop, h->cfg);
}

void lp_pg_host_close(lp_host *h)
{
    if (h == NULL) return;
    lp_pg_pool_close(h->pg);
    h->pg = NULL;
}
