/* pg.h — a per-worker pool of non-blocking PostgreSQL connections.
 *
 * Every call returns at once; results arrive on the loop through the
 * callback. No libpq call made here ever blocks the loop: connections are set
 * up with PQconnectStartParams/PQconnectPoll, are non-blocking
 * (PQsetnonblocking, PQflush with writable polling) and have their sockets
 * watched by uv_poll. Each request runs as one libpq pipeline segment (its
 * statements and a Sync in one write); once every connection is busy,
 * further requests are multiplexed (see lp_pg_query). Segments written to one
 * TCP connection in the same loop iteration leave as one packet (TCP_CORK
 * from the second until the loop is about to wait), and plain SELECTs among
 * them share one Sync (see pg.c: a group that fails is run again job by job,
 * so a caller sees the result it would have had alone). A connection with
 * nothing in flight leaves pipeline mode so libpq parses what the server says
 * unasked (NOTIFY, a FATAL before it hangs up). An ERROR from the server is
 * the request's result; only FATAL/PANIC or a lost socket breaks the
 * connection. A host name in the URL is looked up off the loop
 * (uv_getaddrinfo, again after LP_PG_DNS_TTL_MS) and its addresses are given
 * to libpq as `hostaddr`, one per connect and the next after a failed one,
 * so libpq's own blocking lookup never runs; only a list of several hosts
 * is left to libpq (and would block: use addresses there).
 *
 * Connections that break (server restart, socket error, FATAL from the
 * server) fail their in-flight work with LP_EUNAVAIL at once, are dropped and
 * re-opened with exponential backoff (capped at 2 s). While no connection can
 * be made the pool is "down" and new work fails fast with LP_EUNAVAIL rather
 * than waiting out the queue timeout; the first successful connection brings
 * it back without any action from the caller.
 *
 * Each connection is opened with `statement_timeout` = cfg->db_statement_
 * timeout_ms, `TimeZone` = UTC and `DateStyle` = ISO (through the startup
 * `options`, so no extra round trip), and caches prepared statements (SQL text → statement name, up
 * to LP_PG_STMT_CACHE per connection; text beyond that runs unnamed). A first
 * use sends Parse + Bind/Execute + Sync in one write, so preparing costs no
 * extra round trip.
 *
 * Parameters are text ($1..$n, NULL pointer = SQL NULL), their types inferred
 * by the server from the statement; results are text format.
 *
 * Callback contract, for every function below that takes one: a call that
 * returns 0 runs its callback exactly once, later, on the loop (never from
 * inside the call); a call that returns an error never runs it. Callbacks
 * may call back into the pool, including lp_pg_pool_close. */
#ifndef LP_PG_H
#define LP_PG_H

#include <libpq-fe.h>
#include <uv.h>

#include "config.h"
#include "host.h"

#define LP_PG_STMT_CACHE      256  /* prepared statements kept per connection   */
#define LP_PG_MAX_WAITING     4096 /* queued requests beyond this: LP_EBUSY     */
#define LP_PG_BACKOFF_MAX_MS  2000
#define LP_PG_DNS_TTL_MS      60000 /* a host name is looked up again after this */
#define LP_PG_MAX_ADDRS       4     /* addresses of a host name tried in turn     */
#define LP_PG_PING_TIMEOUT_MS 1000
#define LP_PG_MUX_STALL_MS    50 /* no multiplexing behind a job running longer */
#define LP_PG_PACK_STALL_MS   2  /* no packing behind a job running longer      */
#define LP_PG_SHARE_MAX       8  /* plain SELECTs sharing one Sync (see pg.c)   */

typedef struct lp_pg_pool lp_pg_pool;
typedef struct lp_pg_conn lp_pg_conn; /* a connection pinned by lp_pg_acquire */

/* status is 0, LP_EQUERY (the server answered with an error: res is that
 * error result, see PQresultErrorField), or LP_EUNAVAIL / LP_ETIMEDOUT /
 * LP_EBUSY / LP_ECLOSED with res NULL. On 0 res is PGRES_TUPLES_OK or
 * PGRES_COMMAND_OK. The callback owns res and must PQclear it. */
typedef void (*lp_pg_cb)(int status, PGresult *res, void *data);

/* A batch's results, one per query in order. status is 0 when every query
 * succeeded; LP_EQUERY when one failed (its res[i] is the error, the ones
 * before it succeeded and were rolled back, the ones after it are
 * PGRES_PIPELINE_ABORTED); otherwise as for lp_pg_cb with every res[i] NULL.
 * The callback owns each non-NULL res[i] (PQclear them); the array itself
 * belongs to the pool and is valid until the callback returns. */
typedef void (*lp_pg_batch_cb)(int status, PGresult **res, int n, void *data);

/* status 0 gives a pinned connection that the caller must hand back with
 * lp_pg_release exactly once; otherwise conn is NULL. */
typedef void (*lp_pg_acquire_cb)(int status, lp_pg_conn *conn, void *data);

/* One NOTIFY. channel and payload are valid until the callback returns. */
typedef void (*lp_pg_notify_cb)(const char *channel, const char *payload, void *data);

typedef struct lp_pg_query_spec {
    const char *sql;
    int nparams;
    const char *const *params; /* nparams NUL-terminated strings; NULL = SQL NULL */
} lp_pg_query_spec;

typedef struct lp_pg_stats {
    int size;                 /* configured connections (DB_POOL_SIZE)                */
    int open;                 /* connected and usable (idle, busy or pinned)          */
    int busy;                 /* running a query or pinned by a caller                */
    int waiting;              /* requests queued for a free connection                */
    int inflight;             /* jobs sent and not yet answered (all connections)     */
    int down;                 /* 1 while no connection can be made                    */
    unsigned long errors;     /* failed connects, broken connections, requests that
                                 ended LP_EUNAVAIL/LP_ETIMEDOUT/LP_EBUSY (not SQL
                                 errors: those are the application's business)       */
    unsigned long reconnects; /* connections re-opened after one was lost         */
    unsigned long coalesced;  /* jobs written into a corked socket: sent with the
                                 ones before them in one packet (see pg.c)       */
    int corked;               /* connections corked now (0 once the loop turns)  */
    unsigned long shared;     /* jobs sent without a Sync of their own: they shared
                                 a later job's (plain SELECTs, see pg.c)          */
    unsigned long lookups;    /* host name lookups done off the loop               */
} lp_pg_stats;

/* Opens a pool on loop for cfg->database_url with cfg->db_pool_size
 * connections and starts connecting them; never blocks and does not fail
 * when the server is down (work queued meanwhile waits or fails as
 * described above). cfg must outlive the pool. Returns 0, LP_EINVAL or
 * LP_ENOMEM. */
int lp_pg_pool_open(lp_pg_pool **pool, uv_loop_t *loop, const lp_config *cfg);

/* Runs one statement on a free connection. When every connection is busy
 * it is multiplexed: pipelined behind the work in flight on the least busy
 * unpinned connection, each job its own implicit transaction (an error in
 * one does not touch its neighbours: reads that shared a Sync with a
 * failing one are sent again alone, after the work already in flight), up to
 * cfg->db_pipeline_depth jobs per connection and never behind a job that
 * has run for LP_PG_MUX_STALL_MS. With cfg->db_pipeline_pack > 0 it is
 * instead packed first onto the busiest connection with fewer jobs than
 * that in flight (behind a head younger than LP_PG_PACK_STALL_MS), before an
 * idle connection is used. Beyond that it is queued FIFO up to
 * cfg->db_wait_timeout_ms (→ LP_ETIMEDOUT; queue full → LP_EBUSY). A
 * statement that leaves a transaction open (BEGIN outside lp_pg_acquire) is
 * not supported: jobs multiplexed behind it would run inside it. A broken
 * connection fails all its in-flight jobs with LP_EUNAVAIL (the oldest with
 * LP_ETIMEDOUT when the client-side guard fired). sql and params are copied: the caller may free
 * them on return. Returns 0 (cb will run), LP_EINVAL, LP_ENOMEM, LP_EUNAVAIL (pool down), LP_EBUSY
 * or LP_ECLOSED. */
int lp_pg_query(lp_pg_pool *pool, const char *sql, int nparams, const char *const *params,
                lp_pg_cb cb, void *data);

/* Runs n statements as one pipeline (one round trip, one Sync; placed like
 * lp_pg_query): they run
 * in one implicit transaction, so a failing statement rolls back the ones
 * before it. Statements must be single commands (extended protocol). */
int lp_pg_batch(lp_pg_pool *pool, const lp_pg_query_spec *q, int n, lp_pg_batch_cb cb, void *data);

/* Pins a connection for several statements (a transaction). Waits in the
 * same queue as lp_pg_query. */
int lp_pg_acquire(lp_pg_pool *pool, lp_pg_acquire_cb cb, void *data);

/* Like lp_pg_query / lp_pg_batch on a pinned connection. One request at a
 * time per connection (LP_EBUSY otherwise). A connection that broke answers
 * LP_EUNAVAIL until released. */
int lp_pg_conn_query(lp_pg_conn *conn, const char *sql, int nparams, const char *const *params,
                     lp_pg_cb cb, void *data);
int lp_pg_conn_batch(lp_pg_conn *conn, const lp_pg_query_spec *q, int n, lp_pg_batch_cb cb,
                     void *data);

/* Hands a pinned connection back. A transaction left open is rolled back
 * first (asynchronously, before anyone else gets the connection); a
 * connection in a failed transaction, with a request still in flight or with
 * unread data is closed and re-opened instead of reused. conn is invalid
 * after the call. Safe after lp_pg_pool_close. */
void lp_pg_release(lp_pg_conn *conn);

/* SELECT 1 on a free connection with a short deadline
 * (LP_PG_PING_TIMEOUT_MS, waiting included): for readiness checks. */
int lp_pg_ping(lp_pg_pool *pool, lp_pg_cb cb, void *data);

/* Calls cb for every NOTIFY on channel, delivered by one dedicated
 * connection (not part of the pool) that LISTENs to every registered
 * channel and LISTENs again after a reconnect. Notifications sent while
 * that connection is down are lost: a listener that must not miss an event
 * re-reads its source of truth. *id (optional) receives a handle for
 * lp_pg_unlisten. Returns 0, LP_EINVAL, LP_ENOMEM or LP_ECLOSED. */
int lp_pg_listen(lp_pg_pool *pool, const char *channel, lp_pg_notify_cb cb, void *data,
                 unsigned long *id);

/* Stops calling a listener registered by lp_pg_listen (the server-side
 * LISTEN stays until the connection closes; harmless). Returns 0 or
 * LP_EINVAL for an unknown id. */
int lp_pg_unlisten(lp_pg_pool *pool, unsigned long id);

/* True once the listen connection has LISTENed to every registered channel
 * (for tests and readiness of notification consumers). */
int lp_pg_listening(const lp_pg_pool *pool);

void lp_pg_pool_stats(const lp_pg_pool *pool, lp_pg_stats *out);

/* Fails every queued and in-flight request with LP_ECLOSED (callbacks run
 * before this returns), closes every connection and frees the pool once
 * its handles are closed and every pinned connection has been released.
 * The pool pointer is invalid after the call, except for lp_pg_release on
 * connections still pinned. */
void lp_pg_pool_close(lp_pg_pool *pool);

/* Worker lifecycle: opens h->pg from h->cfg on h->loop (never blocks, does
 * not fail because PostgreSQL is down: it starts connecting), and closes it. */
int lp_pg_host_open(lp_host *h);
void lp_pg_host_close(lp_host *h);

#endif
