/* pg_test.c — the PostgreSQL pool against a real server (DATABASE_URL).
 *
 * The restart case restarts that server while the loop keeps running:
 * LP_TEST_PG_RESTART is the shell command to do it; without it, when
 * scripts/test set up the servers (LIFEPLAN_ROOT and LP_SERVICES_DIR), it is
 * `scripts/services restart-pg DIR`. With neither, the case breaks every
 * connection with pg_terminate_backend, which is what a restart looks like
 * from the client's side. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp.h"
#include "pg.h"

static int passed, failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond)                                                                                  \
            passed++;                                                                              \
        else {                                                                                     \
            failed++;                                                                              \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
        }                                                                                          \
    } while (0)

static uv_loop_t *loop;
static lp_config base_cfg;

/* ---- loop helpers ------------------------------------------------------- */

static void on_tick(uv_timer_t *t) {}

/* Runs the loop until *flag is set (or 30 s pass: a hang is a failure). */
static int run_until(const int *flag)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
    double deadline = lp_now_ms() + 30000;
    while (!*flag && lp_now_ms() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    if (!*flag) fprintf(stderr, "timed out waiting\n");
    return *flag;
}

/* Runs the loop until *counter reaches want (30 s guard, as above). */
static int run_until_n(const int *counter, int want)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
    double deadline = lp_now_ms() + 30000;
    while (*counter < want && lp_now_ms() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *counter >= want;
}

static void sleep_loop(int ms)
{
    int done = 0;
    double until = lp_now_ms() + ms;
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    while (!done) {
        uv_run(loop, UV_RUN_ONCE);
        done = lp_now_ms() >= until;
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

typedef struct qres {
    int done;
    int status;
    PGresult *res;
} qres;

static void on_q(int status, PGresult *res, void *data)
{
    qres *r = data;
    r->done = 1;
    r->status = status;
    r->res = res;
}

/* Runs one query and waits; returns the submit error or the callback status. */
static int q_sync(lp_pg_pool *p, const char *sql, int n, const char *const *params, qres *r)
{
    memset(r, 0, sizeof(*r));
    int err = lp_pg_query(p, sql, n, params, on_q, r);
    if (err != 0) return err;
    run_until(&r->done);
    return r->done ? r->status : LP_ETIMEDOUT;
}

static void q_clear(qres *r)
{
    PQclear(r->res);
    r->res = NULL;
}

static const char *val(qres *r, int row, int col)
{
    if (r->res == NULL || row >= PQntuples(r->res) || col >= PQnfields(r->res)) return "<none>";
    return PQgetisnull(r->res, row, col) ? "<null>" : PQgetvalue(r->res, row, col);
}

static lp_pg_pool *open_pool(lp_config *cfg)
{
    lp_pg_pool *p = NULL;
    int err = lp_pg_pool_open(&p, loop, cfg);
    CHECK(err == 0);
    return p;
}

/* The settings of a pool of one connection taking up to depth jobs in
 * flight (the pool keeps a pointer: keep them alive while it is open). */
static lp_config single_cfg(int depth)
{
    lp_config cfg = base_cfg;
    cfg.db_pool_size = 1;
    cfg.db_pipeline_depth = depth;
    return cfg;
}

static void close_pool(lp_pg_pool *p)
{
    lp_pg_pool_close(p);
    uv_run(loop, UV_RUN_NOWAIT);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* ---- cases -------------------------------------------------------------- */

static void test_basic(void)
{
    lp_config cfg = base_cfg;
    lp_pg_pool *p = open_pool(&cfg);
    qres r;
    const char *params[] = {"41", NULL};
    CHECK(q_sync(p, "SELECT $1::int + 1 AS n, $2::text IS NULL AS isnull", 2, params, &r) == 0);
    CHECK(strcmp(val(&r, 0, 0), "42") == 0);
    CHECK(strcmp(val(&r, 0, 1), "t") == 0);
    q_clear(&r);

    /* session settings arrive through the startup options */
    CHECK(q_sync(p, "SELECT current_setting('TimeZone'), current_setting('statement_timeout')", 0,
                 NULL, &r) == 0);
    CHECK(strcmp(val(&r, 0, 0), "UTC") == 0);
    CHECK(strcmp(val(&r, 0, 1), "5s") == 0);
    q_clear(&r);

    /* an SQL error is LP_EQUERY with the server's error result */
    CHECK(q_sync(p, "SELECT 1/0", 0, NULL, &r) == LP_EQUERY);
    CHECK(r.res != NULL && strcmp(PQresultErrorField(r.res, PG_DIAG_SQLSTATE)
                                      ? PQresultErrorField(r.res, PG_DIAG_SQLSTATE)
                                      : "",
                                  "22012") == 0);
    q_clear(&r);
    /* a syntax error fails the Parse; the connection stays usable */
    CHECK(q_sync(p, "SELEC nonsense", 0, NULL, &r) == LP_EQUERY);
    CHECK(r.res != NULL && strcmp(PQresultErrorField(r.res, PG_DIAG_SQLSTATE)
                                      ? PQresultErrorField(r.res, PG_DIAG_SQLSTATE)
                                      : "",
                                  "42601") == 0);
    q_clear(&r);
    CHECK(q_sync(p, "SELECT 'still fine'", 0, NULL, &r) == 0);
    CHECK(strcmp(val(&r, 0, 0), "still fine") == 0);
    q_clear(&r);

    lp_pg_stats st;
    lp_pg_pool_stats(p, &st);
    CHECK(st.size == cfg.db_pool_size);
    CHECK(st.open >= 1);
    CHECK(st.busy == 0 && st.waiting == 0 && st.down == 0);

    qres ping = {0};
    CHECK(lp_pg_ping(p, on_q, &ping) == 0);
    run_until(&ping.done);
    CHECK(ping.status == 0 && strcmp(val(&ping, 0, 0), "1") == 0);
    q_clear(&ping);
    close_pool(p);
}

static void test_injection_roundtrip(void)
{
    lp_config cfg = base_cfg;
    lp_pg_pool *p = open_pool(&cfg);
    qres r;
    char table[64];
    snprintf(table, sizeof(table), "lp_pg_test_%d", (int)getpid());
    char sql[256];
    snprintf(sql, sizeof(sql), "CREATE TABLE %s (id serial PRIMARY KEY, v text)", table);
    CHECK(q_sync(p, sql, 0, NULL, &r) == 0);
    q_clear(&r);

    const char *nasty[] = {"' OR 1=1 --",
                           "Robert'); DROP TABLE students;--",
                           "a;b;c",
                           "\"double\" 'single' \\backslash",
                           "$1 $2 ?",
                           "한글 가계부",
                           ""};
    for (size_t i = 0; i < LP_ARRAY_SIZE(nasty); i++) {
        const char *params[] = {nasty[i]};
        snprintf(sql, sizeof(sql), "INSERT INTO %s (v) VALUES ($1) RETURNING v", table);
        CHECK(q_sync(p, sql, 1, params, &r) == 0);
        CHECK(strcmp(val(&r, 0, 0), nasty[i]) == 0);
        q_clear(&r);
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE v = $1", table);
        CHECK(q_sync(p, sql, 1, params, &r) == 0);
        CHECK(strcmp(val(&r, 0, 0), "1") == 0); /* matched exactly itself, not everything */
        q_clear(&r);
    }
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    CHECK(q_sync(p, sql, 0, NULL, &r) == 0);
    CHECK(atoi(val(&r, 0, 0)) == (int)LP_ARRAY_SIZE(nasty));
    q_clear(&r);
    snprintf(sql, sizeof(sql), "DROP TABLE %s", table);
    CHECK(q_sync(p, sql, 0, NULL, &r) == 0);
    q_clear(&r);
    close_pool(p);
}

static void test_prepared_cache(void)
{
    lp_config cfg = base_cfg;
    cfg.db_pool_size = 1;
    lp_pg_pool *p = open_pool(&cfg);
    qres r;
    const char *sql = "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1";
    const char *params[] = {sql};
    CHECK(q_sync(p, sql, 1, params, &r) == 0);
    /* the statement asking is itself prepared before it runs */
    CHECK(strcmp(val(&r, 0, 0), "1") == 0);
    q_clear(&r);
    for (int i = 0; i < 3; i++) {
        CHECK(q_sync(p, sql, 1, params, &r) == 0);
        CHECK(strcmp(val(&r, 0, 0), "1") == 0); /* reused, not prepared again */
        q_clear(&r);
    }
    CHECK(q_sync(p, "SELECT count(*) FROM pg_prepared_statements", 0, NULL, &r) == 0);
    CHECK(strcmp(val(&r, 0, 0), "2") == 0);
    q_clear(&r);
    close_pool(p);
}

typedef struct many {
    int done, ok, wrong;
} many;

typedef struct many_q {
    many *m;
    int want;
} many_q;

static void on_many(int status, PGresult *res, void *data)
{
    many_q *q = data;
    q->m->done++;
    if (status == 0 && atoi(PQgetvalue(res, 0, 0)) == q->want)
        q->m->ok++;
    else
        q->m->wrong++;
    PQclear(res);
}

static void test_concurrency(void)
{
    lp_config cfg = base_cfg;
    cfg.db_pool_size = 3;
    cfg.db_wait_timeout_ms = 20000;
    lp_pg_pool *p = open_pool(&cfg);
    enum { N = 300 };
    static many_q qs[N];
    many m = {0};
    int submitted = 0;
    for (int i = 0; i < N; i++) {
        char num[16];
        snprintf(num, sizeof(num), "%d", i);
        const char *params[] = {num};
        qs[i] = (many_q){&m, i * 2};
        if (lp_pg_query(p, "SELECT $1::int * 2 FROM pg_sleep(0.001)", 1, params, on_many, &qs[i]) ==
            0)
            submitted++;
    }
    CHECK(submitted == N);
    lp_pg_stats st;
    lp_pg_pool_stats(p, &st);
    CHECK(st.waiting > 0); /* more work than connections: the queue was used */
    CHECK(run_until_n(&m.done, N));
    CHECK(m.ok == N);
    CHECK(m.wrong == 0);
    lp_pg_pool_stats(p, &st);
    CHECK(st.open <= 3 && st.waiting == 0 && st.busy == 0);
    close_pool(p);
}

static void test_wait_timeout(void)
{
    lp_config cfg = base_cfg;
    cfg.db_pool_size = 1;
    cfg.db_wait_timeout_ms = 100;
    cfg.db_pipeline_depth = 1; /* the queue, not a pipeline behind the sleep */
    lp_pg_pool *p = open_pool(&cfg);
    qres warm;
    CHECK(q_sync(p, "SELECT 1", 0, NULL, &warm) == 0);
    q_clear(&warm);
    qres slow = {0}, waiting = {0};
    CHECK(lp_pg_query(p, "SELECT pg_sleep(1)", 0, NULL, on_q, &slow) == 0);
    CHECK(lp_pg_query(p, "SELECT 2", 0, NULL, on_q, &waiting) == 0);
    run_until(&waiting.done);
    CHECK(waiting.status == LP_ETIMEDOUT && waiting.res == NULL);
    CHECK(!slow.done);
    run_until(&slow.done);
    CHECK(slow.status == 0);
    q_clear(&slow);
    lp_pg_stats st;
    lp_pg_pool_stats(p, &st);
    CHECK(st.errors >= 1);
    close_pool(p);
}

static void test_statement_timeout(void)
{
    lp_config cfg = base_cfg;
    cfg.db_statement_timeout_ms = 100;
    lp_pg_pool *p = open_pool(&cfg);
    qres r;
    CHECK(q_sync(p, "SELECT pg_sleep(3)", 0, NULL, &r) == LP_EQUERY);
    const char *state = r.res ? PQresultErrorField(r.res, PG_DIAG_SQLSTATE) : NULL;
    CHECK(state != NULL && strcmp(state, "57014") == 0);
    q_clear(&r);
    close_pool(p);
}

typedef struct bres {
    int done, status, n;
    PGresult *res[8];
} bres;

static void on_batch(int status, PGresult **res, int n, void *data)
{
    bres *b = data;
    b->done = 1;
    b->status = status;
    b->n = n;
    for (int i = 0; i < n && i < 8; i++)
        b->res[i] = res[i];
}

static void bres_clear(bres *b)
{
    for (int i = 0; i < b->n && i < 8; i++)
        PQclear(b->res[i]);
    memset(b, 0, sizeof(*b));
}

static void test_batch(void)
{
    lp_config cfg = base_cfg;
    cfg.db_pool_size = 2;
    lp_pg_pool *p = open_pool(&cfg);
    qres r;
    char table[64], sql[3][160];
    snprintf(table, sizeof(table), "lp_pg_batch_%d", (int)getpid());
    snprintf(sql[0], sizeof(sql[0]), "CREATE TABLE %s (v int PRIMARY KEY)", table);
    CHECK(q_sync(p, sql[0], 0, NULL, &r) == 0);
    q_clear(&r);

    const char *one[] = {"1"}, *two[] = {"2"};
    snprintf(sql[0], sizeof(sql[0]), "INSERT INTO %s VALUES ($1)", table);
    snprintf(sql[1], sizeof(sql[1]), "SELECT count(*) FROM %s", table);
    lp_pg_query_spec ok[] = {{sql[0], 1, one}, {sql[0], 1, two}, {sql[1], 0, NULL}};
    bres b = {0};
    CHECK(lp_pg_batch(p, ok, 3, on_batch, &b) == 0);
    run_until(&b.done);
    CHECK(b.status == 0 && b.n == 3);
    CHECK(b.res[2] != NULL && strcmp(PQgetvalue(b.res[2], 0, 0), "2") == 0);
    bres_clear(&b);

    /* a failing statement rolls back the whole batch; later ones are aborted */
    const char *three[] = {"3"};
    lp_pg_query_spec bad[] = {{sql[0], 1, three}, {sql[0], 1, one}, {sql[1], 0, NULL}};
    CHECK(lp_pg_batch(p, bad, 3, on_batch, &b) == 0);
    run_until(&b.done);
    CHECK(b.status == LP_EQUERY);
    CHECK(b.res[0] && PQresultStatus(b.res[0]) == PGRES_COMMAND_OK);
    CHECK(b.res[1] && strcmp(PQresultErrorField(b.res[1], PG_DIAG_SQLSTATE), "23505") == 0);
    CHECK(b.res[2] && PQresultStatus(b.res[2]) == PGRES_PIPELINE_ABORTED);
    bres_clear(&b);
    CHECK(q_sync(p, sql[1], 0, NULL, &r) == 0);
    CHECK(strcmp(val(&r, 0, 0), "2") == 0); /* the 3 was rolled back */
    q_clear(&r);

    snprintf(sql[2], sizeof(sql[2]), "DROP TABLE %s", table);
    CHECK(q_sync(p, sql[2], 0, NULL, &r) == 0);
    q_clear(&r);
    close_pool(p);
}

typedef struct acq {
    int done, status;
    lp_pg_conn *conn;
} acq;

static void on_acq(int status, lp_pg_conn *conn, void *data)
{
    acq *a = data;
    a->done = 1;
    a->status = status;
    a->conn = conn;
}

static int cq_sync(lp_pg_conn *c, const char *sql, int n, const char *const *params, qres *r)
{
    memset(r, 0, sizeof(*r));
    int err = lp_pg_conn_query(c, sql, n, params, on_q, r);
    if (err != 0) return err;
    run_until(&r->done);
    return r->status;
}

static void test_pinned(void)
{
    lp_config cfg = base_cfg;
    cfg.db_pool_size = 1;
    lp_pg_pool *p = open_pool(&cfg);
    qres r;
    char table[64], sql[160];
    snprintf(table, sizeof(table), "lp_pg_tx_%d", (int)getpid());
    snprintf(sql, sizeof(sql), "CREATE TABLE %s (v int)", table);
    CHECK(q_sync(p, sql, 0, NULL, &r) == 0);
    q_clear(&r);
    char ins[160], cnt[160];
    snprintf(ins, sizeof(ins), "INSERT INTO %s VALUES (1)", table);
    snprintf(cnt, sizeof(cnt), "SELECT count(*) FROM %s", table);

    /* committed transaction */
    acq a = {0};
    CHECK(lp_pg_acquire(p, on_acq, &a) == 0);
    CHECK(!a.done); /* never from inside the call */
    run_until(&a.done);
    CHECK(a.status == 0 && a.conn != NULL);
    CHECK(cq_sync(a.conn, "BEGIN", 0, NULL, &r) == 0);
    q_clear(&r);
    CHECK(cq_sync(a.conn, "SET LOCAL lock_timeout = '1234ms'", 0, NULL, &r) == 0);
    q_clear(&r);
    CHECK(cq_sync(a.conn, ins, 0, NULL, &r) == 0);
    q_clear(&r);
    /* the only connection is pinned: other work waits for it */
    qres other = {0};
    CHECK(lp_pg_query(p, cnt, 0, NULL, on_q, &other) == 0);
    CHECK(cq_sync(a.conn, "COMMIT", 0, NULL, &r) == 0);
    q_clear(&r);
    CHECK(!other.done);
    lp_pg_release(a.conn);
    run_until(&other.done);
    CHECK(other.status == 0 && strcmp(val(&other, 0, 0), "1") == 0);
    q_clear(&other);

    /* released with the transaction open: rolled back before reuse */
    memset(&a, 0, sizeof(a));
    CHECK(lp_pg_acquire(p, on_acq, &a) == 0);
    run_until(&a.done);
    CHECK(cq_sync(a.conn, "BEGIN", 0, NULL, &r) == 0);
    q_clear(&r);
    CHECK(cq_sync(a.conn, "SET LOCAL lock_timeout = '1234ms'", 0, NULL, &r) == 0);
    q_clear(&r);
    CHECK(cq_sync(a.conn, ins, 0, NULL, &r) == 0);
    q_clear(&r);
    lp_pg_release(a.conn);
    CHECK(q_sync(p, cnt, 0, NULL, &r) == 0);
    CHECK(strcmp(val(&r, 0, 0), "1") == 0);
    q_clear(&r);

    /* released in a failed transaction: closed and replaced, not reused */
    memset(&a, 0, sizeof(a));
    CHECK(lp_pg_acquire(p, on_acq, &a) == 0);
    run_until(&a.done);
    CHECK(cq_sync(a.conn, "SELECT pg_backend_pid()", 0, NULL, &r) == 0);
    int pid = atoi(val(&r, 0, 0));
    q_clear(&r);
    CHECK(cq_sync(a.conn, "BEGIN", 0, NULL, &r) == 0);
    q_clear(&r);
    CHECK(cq_sync(a.conn, "SET LOCAL lock_timeout = '1234ms'", 0, NULL, &r) == 0);
    q_clear(&r);
    CHECK(cq_sync(a.conn, "SELECT 1/0", 0, NULL, &r) == LP_EQUERY);
    q_clear(&r);
    lp_pg_release(a.conn);
    CHECK(q_sync(p, "SELECT pg_backend_pid()", 0, NULL, &r) == 0);
    CHECK(atoi(val(&r, 0, 0)) != pid);
    q_clear(&r);

    /* a script that runs BEGIN through the pool does not leak the transaction */
    CHECK(q_sync(p, "BEGIN", 0, NULL, &r) == 0);
    q_clear(&r);
    CHECK(q_sync(p, "SAVEPOINT sp", 0, NULL, &r) == LP_EQUERY); /* no transaction block */
    CHECK(r.res && strcmp(PQresultErrorField(r.res, PG_DIAG_SQLSTATE), "25P01") == 0);
    q_clear(&r);

    snprintf(sql, sizeof(sql), "DROP TABLE %s", table);
    CHECK(q_sync(p, sql, 0, NULL, &r) == 0);
    q_clear(&r);
    close_pool(p);
}

static void test_broken_connection(void)
{
    lp_config cfg = base_cfg;
    cfg.db_pool_size = 1;
    lp_pg_pool *p = open_pool(&cfg), *killer = open_pool(&base_cfg);
    qres r;
    CHECK(q_sync(p, "SELECT pg_backend_pid()", 0, NULL, &r) == 0);
    char pid[16];
    snprintf(pid, sizeof(pid), "%s", val(&r, 0, 0));
    q_clear(&r);

    qres slow = {0};
    CHECK(lp_pg_query(p, "SELECT pg_sleep(10)", 0, NULL, on_q, &slow) == 0);
    sleep_loop(100);
    const char *params[] = {pid};
    CHECK(q_sync(killer, "SELECT pg_terminate_backend($1::int)", 1, params, &r) == 0);
    q_clear(&r);
    run_until(&slow.done);
    CHECK(slow.status == LP_EUNAVAIL && slow.res == NULL);

    /* the pool reconnects by itself */
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        int st = q_sync(p, "SELECT pg_backend_pid()", 0, NULL, &r);
        ok = st == 0 && strcmp(val(&r, 0, 0), pid) != 0;
        q_clear(&r);
        if (!ok) sleep_loop(50);
    }
    CHECK(ok);
    lp_pg_stats st;
    lp_pg_pool_stats(p, &st);
    CHECK(st.reconnects >= 1 && st.errors >= 1);
    close_pool(killer);
    close_pool(p);
}

static void test_server_down(void)
{
    lp_config cfg = base_cfg;
    /* a port nobody listens on: connection refused */
    snprintf(cfg.database_url, sizeof(cfg.database_url),
             "postgresql://postgres@127.0.0.1:1/postgres");
    cfg.db_wait_timeout_ms = 60000;
    lp_pg_pool *p = open_pool(&cfg);
    qres early = {0};
    /* queued before the first attempt failed: answered when it fails, not after 60 s */
    int err = lp_pg_query(p, "SELECT 1", 0, NULL, on_q, &early);
    if (err == 0) {
        run_until(&early.done);
        CHECK(early.status == LP_EUNAVAIL);
    } else {
        CHECK(err == LP_EUNAVAIL);
    }
    lp_pg_stats st;
    lp_pg_pool_stats(p, &st);
    CHECK(st.down == 1 && st.open == 0);
    qres r;
    CHECK(lp_pg_query(p, "SELECT 1", 0, NULL, on_q, &r) == LP_EUNAVAIL);
    CHECK(lp_pg_ping(p, on_q, &r) == LP_EUNAVAIL);
    CHECK(lp_pg_acquire(p, on_acq, &r) == LP_EUNAVAIL);
    close_pool(p);
}

/* A host name in the URL: looked up off the loop (uv_getaddrinfo) and
 * handed to libpq as hostaddr; the pool connects and answers as with an
 * address. Only when the test URL names 127.0.0.1 (scripts/test's does). */
static void test_host_name(void)
{
    const char *at = strstr(base_cfg.database_url, "@127.0.0.1:");
    if (at == NULL) {
        fprintf(stderr, "skip test_host_name: DATABASE_URL does not name 127.0.0.1\n");
        return;
    }
    lp_config cfg = base_cfg;
    snprintf(cfg.database_url, sizeof(cfg.database_url), "%.*s@localhost:%s",
             (int)(at - base_cfg.database_url), base_cfg.database_url, at + 11);
    lp_pg_pool *p = open_pool(&cfg);
    qres r;
    CHECK(q_sync(p, "SELECT host(inet_server_addr())", 0, NULL, &r) == 0);
    const char *addr = val(&r, 0, 0);
    CHECK(strcmp(addr, "127.0.0.1") == 0 || strcmp(addr, "::1") == 0);
    q_clear(&r);
    lp_pg_stats st;
    lp_pg_pool_stats(p, &st);
    CHECK(st.down == 0 && st.open >= 1);
    CHECK(st.lookups == 1); /* one lookup served every connection */
    close_pool(p);
}

typedef struct spawn_state {
    int done;
    int64_t exit_status;
} spawn_state;

static void on_exit_cb(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    spawn_state *s = proc->data;
    s->done = 1;
    s->exit_status = exit_status;
    uv_close((uv_handle_t *)proc, NULL);
}

typedef struct restart_stats {
    int done, ok, unavail, other;
} restart_stats;

static void on_restart_q(int status, PGresult *res, void *data)
{
    restart_stats *s = data;
    s->done++;
    if (status == 0)
        s->ok++;
    else if (status == LP_EUNAVAIL)
        s->unavail++;
    else
        s->other++;
    PQclear(res);
}

static void test_restart(void)
{
    lp_config cfg = base_cfg;
    cfg.db_pool_size = 2;
    cfg.db_wait_timeout_ms = 20000; /* a hang would show as a timeout, never as a fast answer */
    lp_pg_pool *p = open_pool(&cfg);
    qres r;
    CHECK(q_sync(p, "SELECT 1", 0, NULL, &r) == 0);
    q_clear(&r);

    const char *cmd = getenv("LP_TEST_PG_RESTART");
    char derived[1024];
    const char *root = getenv("LIFEPLAN_ROOT"), *dir = getenv("LP_SERVICES_DIR");
    if ((cmd == NULL || *cmd == '\0') && root != NULL && dir != NULL) {
        snprintf(derived, sizeof(derived), "%s/scripts/services", root);
        if (access(derived, X_OK) == 0) {
            snprintf(derived, sizeof(derived), "'%s/scripts/services' restart-pg '%s' >&2", root,
                     dir);
            cmd = derived;
        }
    }
    restart_stats rs = {0};
    int sent = 0;
    if (cmd != NULL && *cmd) {
        /* the loop keeps running while the server restarts: queries sent
         * meanwhile must each be answered, with success or LP_EUNAVAIL */
        spawn_state ss = {0};
        uv_process_t proc;
        char *args[] = {"/bin/sh", "-c", (char *)cmd, NULL};
        uv_stdio_container_t stdio[3] = {
            {UV_IGNORE, {0}}, {UV_INHERIT_FD, {.fd = 2}}, {UV_INHERIT_FD, {.fd = 2}}};
        uv_process_options_t opt = {
            .exit_cb = on_exit_cb, .file = args[0], .args = args, .stdio_count = 3, .stdio = stdio};
        proc.data = &ss;
        CHECK(uv_spawn(loop, &proc, &opt) == 0);
        while (!ss.done) {
            int err = lp_pg_query(p, "SELECT 1", 0, NULL, on_restart_q, &rs);
            if (err == 0)
                sent++;
            else if (err == LP_EUNAVAIL)
                rs.unavail++;
            else
                rs.other++;
            sleep_loop(20);
        }
        CHECK(ss.exit_status == 0);
        fprintf(stderr, "restart: %d sent, %d ok, %d unavailable\n", sent, rs.ok, rs.unavail);
    } else {
        qres slow = {0};
        CHECK(lp_pg_query(p, "SELECT pg_sleep(10)", 0, NULL, on_q, &slow) == 0);
        lp_pg_pool *killer = open_pool(&base_cfg);
        CHECK(q_sync(killer,
                     "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                     "WHERE application_name = 'lifeplan' AND pid <> pg_backend_pid()",
                     0, NULL, &r) == 0);
        q_clear(&r);
        close_pool(killer);
        run_until(&slow.done);
        CHECK(slow.status == LP_EUNAVAIL);
    }
    CHECK(run_until_n(&rs.done, sent));
    CHECK(rs.other == 0);
    /* back without any action from us */
    int ok = 0;
    for (int i = 0; i < 200 && !ok; i++) {
        int st = q_sync(p, "SELECT 1", 0, NULL, &r);
        ok = st == 0;
        CHECK(st == 0 || st == LP_EUNAVAIL);
        q_clear(&r);
        if (!ok) sleep_loop(50);
    }
    CHECK(ok);
    lp_pg_stats st;
    lp_pg_pool_stats(p, &st);
    CHECK(st.reconnects >= 1);
    close_pool(p);
}

typedef struct notes {
    int n;
    char last[64];
    char channel[64];
} notes;

static void on_notify(const char *channel, const char *payload, void *data)
{
    notes *n = data;
    n->n++;
    snprintf(n->last, sizeof(n->last), "%s", payload);
    snprintf(n->channel, sizeof(n->channel), "%s", channel);
}

static int wait_listening(lp_pg_pool *p)
{
    for (int i = 0; i < 400 && !lp_pg_listening(p); i++)
        sleep_loop(10);
    return lp_pg_listening(p);
}

static int wait_notes(notes *n, int want)
{
    for (int i = 0; i < 400 && n->n < want; i++)
        sleep_loop(10);
    return n->n >= want;
}

static void test_listen(void)
{
    lp_config cfg = base_cfg;
    cfg.db_pool_size = 2;
    lp_pg_pool *p = open_pool(&cfg);
    char channel[64];
    /* mixed case and a space: the channel name must be quoted, not folded */
    snprintf(channel, sizeof(channel), "Lp Test %d", (int)getpid());
    notes n = {0}, other = {0};
    unsigned long id = 0, id2 = 0;
    CHECK(lp_pg_listen(p, channel, on_notify, &n, &id) == 0);
    CHECK(lp_pg_listen(p, "lp_other_channel", on_notify, &other, &id2) == 0);
    CHECK(wait_listening(p));

    qres r;
    const char *one[] = {channel, "first"};
    CHECK(q_sync(p, "SELECT pg_notify($1, $2)", 2, one, &r) == 0);
    q_clear(&r);
    CHECK(wait_notes(&n, 1));
    CHECK(strcmp(n.last, "first") == 0 && strcmp(n.channel, channel) == 0);
    CHECK(other.n == 0);

    /* break the listen connection from another session */
    const char *who[] = {channel};
    CHECK(q_sync(p,
                 "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                 "WHERE query LIKE 'LISTEN %' AND (query LIKE '%' || $1 || '%' "
                 "OR query LIKE '%lp_other_channel%')",
                 1, who, &r) == 0);
    CHECK(strcmp(val(&r, 0, 0), "1") == 0);
    q_clear(&r);
    /* wait for the re-LISTEN on a new connection */
    lp_pg_stats st;
    for (int i = 0; i < 400; i++) {
        lp_pg_pool_stats(p, &st);
        if (st.reconnects >= 1 && lp_pg_listening(p)) break;
        sleep_loop(10);
    }
    CHECK(st.reconnects >= 1);
    CHECK(wait_listening(p));
    const char *two[] = {channel, "after reconnect"};
    CHECK(q_sync(p, "SELECT pg_notify($1, $2)", 2, two, &r) == 0);
    q_clear(&r);
    CHECK(wait_notes(&n, 2));
    CHECK(strcmp(n.last, "after reconnect") == 0);

    /* unlisten: no more calls */
    CHECK(lp_pg_unlisten(p, id) == 0);
    CHECK(lp_pg_unlisten(p, id) == LP_EINVAL);
    const char *three[] = {channel, "ignored"}, *four[] = {"lp_other_channel", "x"};
    CHECK(q_sync(p, "SELECT pg_notify($1, $2)", 2, three, &r) == 0);
    q_clear(&r);
    CHECK(q_sync(p, "SELECT pg_notify($1, $2)", 2, four, &r) == 0);
    q_clear(&r);
    CHECK(wait_notes(&other, 1)); /* delivered after "ignored": ordering proves it was dropped */
    CHECK(n.n == 2);
    close_pool(p);
}

static void on_close_q(int status, PGresult *res, void *data)
{
    int *s = data;
    *s = status;
    PQclear(res);
}

static void test_close_with_work(void)
{
    lp_config cfg = base_cfg;
    cfg.db_pool_size = 2;
    lp_pg_pool *p = open_pool(&cfg);
    qres r;
    CHECK(q_sync(p, "SELECT 1", 0, NULL, &r) == 0); /* at least one connection up */
    q_clear(&r);
    sleep_loop(100);
    acq a = {0};
    CHECK(lp_pg_acquire(p, on_acq, &a) == 0);
    run_until(&a.done);
    CHECK(a.status == 0);
    int s[6];
    for (int i = 0; i < 6; i++)
        s[i] = 1;
    CHECK(lp_pg_conn_query(a.conn, "SELECT pg_sleep(5)", 0, NULL, on_close_q, &s[0]) == 0);
    for (int i = 1; i < 6; i++)
        CHECK(lp_pg_query(p, "SELECT pg_sleep(5)", 0, NULL, on_close_q, &s[i]) == 0);
    notes n = {0};
    CHECK(lp_pg_listen(p, "lp_close_test", on_notify, &n, NULL) == 0);
    sleep_loop(50);
    lp_pg_pool_close(p);
    for (int i = 0; i < 6; i++)
        CHECK(s[i] == LP_ECLOSED);
    CHECK(lp_pg_conn_query(a.conn, "SELECT 1", 0, NULL, on_close_q, &s[0]) == LP_ECLOSED);
    lp_pg_release(a.conn);        /* allowed after close; the last release frees */
    uv_run(loop, UV_RUN_DEFAULT); /* returns only once every handle is closed */
    CHECK(uv_loop_alive(loop) == 0);
}

/* ---- multiplexing ------------------------------------------------------- */

typedef struct ordered {
    int next;  /* completions so far                                        */
    int wrong; /* out of order, failed or a wrong value                     */
} ordered;

typedef struct ordered_q {
    ordered *o;
    int seq;
} ordered_q;

static void on_ordered(int status, PGresult *res, void *data)
{
    ordered_q *q = data;
    if (status != 0 || q->seq != q->o->next || atoi(PQgetvalue(res, 0, 0)) != q->seq * 3)
        q->o->wrong++;
    q->o->next++;
    PQclear(res);
}

static void test_multiplex_order(void)
{
    lp_config cfg = single_cfg(16);
    cfg.db_wait_timeout_ms = 20000;
    lp_pg_pool *p = open_pool(&cfg);
    qres r;
    CHECK(q_sync(p, "SELECT pg_backend_pid()", 0, NULL, &r) == 0);
    char pid[16];
    snprintf(pid, sizeof(pid), "%s", val(&r, 0, 0));
    q_clear(&r);
    enum { N = 200 };
    static ordered_q qs[N];
    ordered o = {0};
    for (int i = 0; i < N; i++) {
        char num[16];
        snprintf(num, sizeof(num), "%d", i);
        const char *params[] = {num};
        qs[i] = (ordered_q){&o, i};
        /* alternate texts: a second statement is prepared while others are in
         * flight (VALUES, not SELECT: each job keeps its own Sync here) */
        const char *sql = i % 2 ? "VALUES ($1::int * 3)" : "VALUES ($1::int + $1::int * 2)";
        CHECK(lp_pg_query(p, sql, 1, params, on_ordered, &qs[i]) == 0);
    }
    lp_pg_stats st;
    lp_pg_pool_stats(p, &st);
    CHECK(st.inflight == 16);    /* one connection, 16 jobs on the wire */
    CHECK(st.waiting == N - 16); /* the rest queued in order */
    /* Sent before the loop turned: the first went out, the socket is corked
     * behind it and the other 15 wait in it for one packet (TCP only). */
    int tcp = strstr(base_cfg.database_url, "@127.0.0.1") != NULL ||
              strstr(base_cfg.database_url, "@localhost") != NULL;
    CHECK(st.corked == (tcp ? 1 : 0));
    CHECK(st.coalesced == (tcp ? 15u : 0u));
    CHECK(run_until_n(&o.next, N));
    CHECK(o.wrong == 0); /* every result reached its own job, in the order sent */
    lp_pg_pool_stats(p, &st);
    CHECK(st.inflight == 0 && st.waiting == 0 && st.busy == 0 && st.reconnects == 0);
    CHECK(st.corked == 0); /* uncorked before the loop waited */
    CHECK(q_sync(p, "SELECT pg_backend_pid()", 0, NULL, &r) == 0);
    CHECK(strcmp(val(&r, 0, 0), pid) == 0); /* the same connection did it all */
    q_clear(&r);
    close_pool(p);
}

static const char *sqlstate(const PGresult *res)
{
    const char *s = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s != NULL ? s : "<none>";
}

/* Neighbours on one connection: an error in one job (in its statements, its
 * Bind or its Parse) leaves the jobs before and after it untouched. */
static void test_multiplex_isolation(void)
{
    lp_config cfg = single_cfg(16);
    lp_pg_pool *p = open_pool(&cfg);
    qres r;
    CHECK(q_sync(p, "SELECT pg_backend_pid()", 0, NULL, &r) == 0);
    char pid[16];
    snprintf(pid, sizeof(pid), "%s", val(&r, 0, 0));
    q_clear(&r);

    const char *zero[] = {"0"}, *one[] = {"1"};
    qres a = {0}, div = {0}, c = {0}, bind = {0}, e = {0}, after_abort = {0}, syn1 = {0},
         syn2 = {0}, last = {0};
    bres b = {0}, aborting = {0};
    lp_pg_query_spec bq[] = {{"SELECT 'b1'", 0, NULL}, {"SELECT 'b2'", 0, NULL}};
    /* the second statement's Parse is skipped: the first one fails */
    lp_pg_query_spec abq[] = {{"SELECT 1/$1::int", 1, zero}, {"SELECT 'fresh' AS x", 0, NULL}};
    CHECK(lp_pg_query(p, "SELECT 'a'", 0, NULL, on_q, &a) == 0);
    CHECK(lp_pg_query(p, "SELECT 1/$1::int", 1, zero, on_q, &div) == 0);
    CHECK(lp_pg_batch(p, bq, 2, on_batch, &b) == 0);
    CHECK(lp_pg_query(p, "SELECT 'c'", 0, NULL, on_q, &c) == 0);
    CHECK(lp_pg_query(p, "SELECT 'bind'", 1, one, on_q, &bind) == 0); /* one parameter too many */
    CHECK(lp_pg_query(p, "SELECT 'e'", 0, NULL, on_q, &e) == 0);
    CHECK(lp_pg_batch(p, abq, 2, on_batch, &aborting) == 0);
    CHECK(lp_pg_query(p, "SELECT 'fresh' AS x", 0, NULL, on_q, &after_abort) == 0);
    CHECK(lp_pg_query(p, "SELEC 'typo'", 0, NULL, on_q, &syn1) == 0);
    CHECK(lp_pg_query(p, "SELEC 'typo'", 0, NULL, on_q, &syn2) == 0);
    CHECK(lp_pg_query(p, "SELECT 'last'", 0, NULL, on_q, &last) == 0);
    lp_pg_stats st;
    lp_pg_pool_stats(p, &st);
    CHECK(st.inflight == 11 && st.waiting == 0);
    /* the reads behind the failing one shared its Sync: they run again,
     * alone, after the ones already in flight */
    const int *dones[] = {&a.done,    &div.done,  &b.done,        &c.done,
                          &bind.done, &e.done,    &aborting.done, &after_abort.done,
                          &syn1.done, &syn2.done, &last.done};
    for (size_t i = 0; i < sizeof(dones) / sizeof(dones[0]); i++)
        CHECK(run_until(dones[i]));

    CHECK(a.status == 0 && strcmp(val(&a, 0, 0), "a") == 0);
    CHECK(div.status == LP_EQUERY && strcmp(sqlstate(div.res), "22012") == 0);
    CHECK(b.status == 0 && b.n == 2);
    CHECK(b.res[1] != NULL && strcmp(PQgetvalue(b.res[1], 0, 0), "b2") == 0);
    CHECK(c.status == 0 && strcmp(val(&c, 0, 0), "c") == 0);
    CHECK(bind.status == LP_EQUERY && strcmp(sqlstate(bind.res), "08P01") == 0);
    CHECK(e.status == 0 && strcmp(val(&e, 0, 0), "e") == 0);
    CHECK(aborting.status == LP_EQUERY && strcmp(sqlstate(aborting.res[0]), "22012") == 0);
    CHECK(aborting.res[1] != NULL && PQresultStatus(aborting.res[1]) == PGRES_PIPELINE_ABORTED);
    /* sent while the batch's Parse of the same text was unanswered */
    CHECK(after_abort.status == 0 && strcmp(val(&after_abort, 0, 0), "fresh") == 0);
    CHECK(syn1.status == LP_EQUERY && strcmp(sqlstate(syn1.res), "42601") == 0);
    CHECK(syn2.status == LP_EQUERY && strcmp(sqlstate(syn2.res), "42601") == 0);
    CHECK(last.status == 0 && strcmp(val(&last, 0, 0), "last") == 0);
    q_clear(&a), q_clear(&div), q_clear(&c), q_clear(&bind), q_clear(&e);
    q_clear(&after_abort), q_clear(&syn1), q_clear(&syn2), q_clear(&last);
    bres_clear(&b), bres_clear(&aborting);

    /* the text is prepared on its own now */
    CHECK(q_sync(p, "SELECT 'fresh' AS x", 0, NULL, &r) == 0 &&
          strcmp(val(&r, 0, 0), "fresh") == 0);
    q_clear(&r);
    CHECK(q_sync(p, "SELECT pg_backend_pid()", 0, NULL, &r) == 0);
    CHECK(strcmp(val(&r, 0, 0), pid) == 0); /* no error broke the connection */
    q_clear(&r);
    lp_pg_pool_stats(p, &st);
    CHECK(st.reconnects == 0 && st.errors == 0);
    close_pool(p);
}

/* Plain SELECTs sent in one loop iteration share one Sync (one
 * transaction, one answer for all); writes and row locks keep their own.
 * When a group fails, the failing job keeps its error and the others run
 * again alone, so nothing they did is lost: also when the failure is the
 * commit at the shared Sync (a deferred unique constraint, written by a
 * function a SELECT calls). */
static void test_shared_sync(void)
{
    lp_config cfg = single_cfg(16);
    lp_pg_pool *p = open_pool(&cfg);
    qres r;
    const char *setup[] = {
        "DROP TABLE IF EXISTS shared_t CASCADE",
        "CREATE TABLE shared_t (k int UNIQUE DEFERRABLE INITIALLY DEFERRED)",
        "CREATE FUNCTION shared_put(int) RETURNS int LANGUAGE sql AS "
        "'INSERT INTO shared_t VALUES ($1) RETURNING k'",
        "SELECT pg_backend_pid()",
    };
    for (size_t i = 0; i < LP_ARRAY_SIZE(setup); i++) {
        CHECK(q_sync(p, setup[i], 0, NULL, &r) == 0);
        if (i + 1 < LP_ARRAY_SIZE(setup)) q_clear(&r);
    }
    char pid[16];
    snprintf(pid, sizeof(pid), "%s", val(&r, 0, 0));
    q_clear(&r);

    /* reads share; a write and a locking read close the group */
    lp_pg_stats st0, st;
    lp_pg_pool_stats(p, &st0);
    enum { N = 6 };
    qres lead = {0}, reads[N], write = {0}, locked = {0};
    memset(reads, 0, sizeof(reads));
    char nums[N][8];
    CHECK(lp_pg_query(p, "SELECT 'lead'", 0, NULL, on_q, &lead) == 0);
    for (int i = 0; i < N; i++) {
        snprintf(nums[i], sizeof(nums[i]), "%d", i);
        const char *params[] = {nums[i]};
        CHECK(lp_pg_query(p, " select $1::int + 1 AS informed", 1, params, on_q, &reads[i]) == 0);
    }
    CHECK(lp_pg_query(p, "INSERT INTO shared_t VALUES (100)", 0, NULL, on_q, &write) == 0);
    CHECK(lp_pg_query(p, "SELECT k FROM shared_t WHERE k = 100 FOR UPDATE", 0, NULL, on_q,
                      &locked) == 0);
    lp_pg_pool_stats(p, &st);
    CHECK(st.shared == st0.shared + N + 1); /* the lead too: it waits for the loop to turn */
    CHECK(run_until(&locked.done));
    CHECK(lead.status == 0 && strcmp(val(&lead, 0, 0), "lead") == 0);
    for (int i = 0; i < N; i++) {
        CHECK(reads[i].done && reads[i].status == 0 && atoi(val(&reads[i], 0, 0)) == i + 1);
        q_clear(&reads[i]);
    }
    CHECK(write.status == 0 && locked.status == 0 && strcmp(val(&locked, 0, 0), "100") == 0);
    q_clear(&lead), q_clear(&write), q_clear(&locked);

    /* the commit of a group fails: every job runs again alone, and only the
     * second insert of 7 fails, at its own commit */
    qres put1 = {0}, put2 = {0}, by = {0};
    CHECK(lp_pg_query(p, "SELECT 'lead'", 0, NULL, on_q, &lead) == 0);
    CHECK(lp_pg_query(p, "SELECT shared_put(7)", 0, NULL, on_q, &put1) == 0);
    CHECK(lp_pg_query(p, "SELECT shared_put(7)", 0, NULL, on_q, &put2) == 0);
    CHECK(lp_pg_query(p, "SELECT 'bystander'", 0, NULL, on_q, &by) == 0);
    lp_pg_pool_stats(p, &st0);
    CHECK(st0.shared == st.shared + 4);
    CHECK(run_until(&put1.done) && run_until(&put2.done) && run_until(&by.done));
    CHECK(lead.status == 0);
    CHECK(put1.status == 0 && strcmp(val(&put1, 0, 0), "7") == 0);
    CHECK(put2.status == LP_EQUERY && strcmp(sqlstate(put2.res), "23505") == 0);
    CHECK(by.status == 0 && strcmp(val(&by, 0, 0), "bystander") == 0);
    q_clear(&lead), q_clear(&put1), q_clear(&put2), q_clear(&by);

    /* a statement fails in a group: the insert before it was rolled back
     * with it, runs again and stays */
    qres put8 = {0}, div = {0}, after = {0};
    CHECK(lp_pg_query(p, "SELECT 'lead'", 0, NULL, on_q, &lead) == 0);
    CHECK(lp_pg_query(p, "SELECT shared_put(8)", 0, NULL, on_q, &put8) == 0);
    CHECK(lp_pg_query(p, "SELECT 1/0", 0, NULL, on_q, &div) == 0);
    CHECK(lp_pg_query(p, "SELECT 'after'", 0, NULL, on_q, &after) == 0);
    CHECK(run_until(&put8.done) && run_until(&div.done) && run_until(&after.done));
    CHECK(put8.status == 0 && strcmp(val(&put8, 0, 0), "8") == 0);
    CHECK(div.status == LP_EQUERY && strcmp(sqlstate(div.res), "22012") == 0);
    CHECK(after.status == 0 && strcmp(val(&after, 0, 0), "after") == 0);
    q_clear(&lead), q_clear(&put8), q_clear(&div), q_clear(&after);

    CHECK(q_sync(p, "SELECT string_agg(k::text, ',' ORDER BY k) FROM shared_t", 0, NULL, &r) == 0);
    CHECK(strcmp(val(&r, 0, 0), "7,8,100") == 0);
    q_clear(&r);
    /* a commit failure alone: the job's error, the connection kept */
    CHECK(q_sync(p, "INSERT INTO shared_t VALUES (7)", 0, NULL, &r) == LP_EQUERY);
    CHECK(strcmp(sqlstate(r.res), "23505") == 0);
    q_clear(&r);
    CHECK(q_sync(p, "SELECT pg_backend_pid()", 0, NULL, &r) == 0);
    CHECK(strcmp(val(&r, 0, 0), pid) == 0);
    q_clear(&r);
    lp_pg_pool_stats(p, &st);
    CHECK(st.reconnects == 0 && st.errors == 0);
    CHECK(q_sync(p, "DROP TABLE shared_t CASCADE", 0, NULL, &r) == 0);
    q_clear(&r);
    CHECK(q_sync(p, "DROP FUNCTION shared_put(int)", 0, NULL, &r) == 0);
    q_clear(&r);
    close_pool(p);
}

/* statement_timeout is per statement in a shared group too: three reads of
 * 0.4 s share a Sync under a 1 s timeout (1.2 s together) and all succeed. */
static void test_shared_timeout(void)
{
    lp_config cfg = single_cfg(16);
    cfg.db_statement_timeout_ms = 1000;
    lp_pg_pool *p = open_pool(&cfg);
    qres r;
    CHECK(q_sync(p, "SELECT 1", 0, NULL, &r) == 0); /* connected, with the 1 s timeout */
    q_clear(&r);
    lp_pg_stats st0, st;
    lp_pg_pool_stats(p, &st0);
    qres s[3];
    memset(s, 0, sizeof(s));
    for (int i = 0; i < 3; i++)
        CHECK(lp_pg_query(p, "SELECT pg_sleep(0.4)", 0, NULL, on_q, &s[i]) == 0);
    lp_pg_pool_stats(p, &st);
    CHECK(st.shared == st0.shared + 3);
    for (int i = 0; i < 3; i++) {
        CHECK(run_until(&s[i].done));
        CHECK(s[i].status == 0);
        if (s[i].status != 0) fprintf(stderr, "shared sleep %d: %s\n", i, sqlstate(s[i].res));
        q_clear(&s[i]);
    }
    /* and the timeout is there: one read over it fails */
    CHECK(q_sync(p, "SELECT pg_sleep(1.2)", 0, NULL, &r) == LP_EQUERY);
    CHECK(strcmp(sqlstate(r.res), "57014") == 0);
    q_clear(&r);
    close_pool(p);
}

/* A Bind with the wrong number of parameters is an ordinary ERROR (08P01),
 * not a broken connection; also without multiplexing and in a batch. */
static void test_bind_mismatch(void)
{
    lp_config cfg = base_cfg;
    cfg.db_pool_size = 1;
    cfg.db_pipeline_depth = 1;
    lp_pg_pool *p = open_pool(&cfg);
    qres r;
    CHECK(q_sync(p, "SELECT pg_backend_pid()", 0, NULL, &r) == 0);
    char pid[16];
    snprintf(pid, sizeof(pid), "%s", val(&r, 0, 0));
    q_clear(&r);
    const char *nil[] = {NULL};
    CHECK(q_sync(p, "SELECT 1", 1, nil, &r) == LP_EQUERY);
    CHECK(strcmp(sqlstate(r.res), "08P01") == 0);
    q_clear(&r);
    CHECK(q_sync(p, "SELECT 1", 1, nil, &r) == LP_EQUERY); /* prepared this time */
    CHECK(strcmp(sqlstate(r.res), "08P01") == 0);
    q_clear(&r);
    bres b = {0};
    lp_pg_query_spec q[] = {{"SELECT 7", 0, NULL}, {"SELECT $1::int", 0, NULL}};
    CHECK(lp_pg_batch(p, q, 2, on_batch, &b) == 0);
    run_until(&b.done);
    CHECK(b.status == LP_EQUERY && strcmp(sqlstate(b.res[1]), "08P01") == 0);
    bres_clear(&b);
    CHECK(q_sync(p, "SELECT pg_backend_pid()", 0, NULL, &r) == 0);
    CHECK(strcmp(val(&r, 0, 0), pid) == 0);
    q_clear(&r);
    lp_pg_stats st;
    lp_pg_pool_stats(p, &st);
    CHECK(st.reconnects == 0 && st.errors == 0);
    close_pool(p);
}

/* A connection that breaks fails every job in flight on it. */
static void test_multiplex_broken(void)
{
    lp_config cfg = base_cfg;
    cfg.db_pool_size = 1;
    cfg.db_pipeline_depth = 8;
    lp_pg_pool *p = open_pool(&cfg), *killer = open_pool(&base_cfg);
    qres r;
    CHECK(q_sync(p, "SELECT pg_backend_pid()", 0, NULL, &r) == 0);
    char pid[16];
    snprintf(pid, sizeof(pid), "%s", val(&r, 0, 0));
    q_clear(&r);
    qres slow = {0}, behind[3] = {{0}};
    bres bb = {0};
    lp_pg_query_spec bq[] = {{"SELECT 1", 0, NULL}, {"SELECT 2", 0, NULL}};
    CHECK(lp_pg_query(p, "SELECT pg_sleep(10)", 0, NULL, on_q, &slow) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(lp_pg_query(p, "SELECT 1", 0, NULL, on_q, &behind[i]) == 0);
    CHECK(lp_pg_batch(p, bq, 2, on_batch, &bb) == 0);
    lp_pg_stats st;
    lp_pg_pool_stats(p, &st);
    CHECK(st.inflight == 5);
    sleep_loop(100);
    const char *params[] = {pid};
    CHECK(q_sync(killer, "SELECT pg_terminate_backend($1::int)", 1, params, &r) == 0);
    q_clear(&r);
    run_until(&bb.done);
    CHECK(slow.done && slow.status == LP_EUNAVAIL && slow.res == NULL);
    for (int i = 0; i < 3; i++)
        CHECK(behind[i].done && behind[i].status == LP_EUNAVAIL && behind[i].res == NULL);
    CHECK(bb.status == LP_EUNAVAIL && bb.res[0] == NULL && bb.res[1] == NULL);
    lp_pg_pool_stats(p, &st);
    CHECK(st.inflight == 0);
    int ok = 0; /* and comes back by itself */
    for (int i = 0; i < 100 && !ok; i++) {
        int s = q_sync(p, "SELECT pg_backend_pid()", 0, NULL, &r);
        ok = s == 0 && strcmp(val(&r, 0, 0), pid) != 0;
        q_clear(&r);
        if (!ok) sleep_loop(50);
    }
    CHECK(ok);
    close_pool(killer);
    close_pool(p);
}

/* Waits until every connection of p is open. */
static int all_open(lp_pg_pool *p, int size)
{
    lp_pg_stats st;
    for (int i = 0; i < 300; i++) {
        lp_pg_pool_stats(p, &st);
        if (st.open == size) return 1;
        sleep_loop(10);
    }
    return 0;
}

/* DB_PIPELINE_PACK: queries fill a busy connection up to the pack before an
 * idle one is used (the default spreads them); never behind a head that has
 * run for LP_PG_PACK_STALL_MS; pinned work still gets an idle connection. */
static void test_pack(void)
{
    lp_config cfg = base_cfg;
    cfg.db_pool_size = 4;
    cfg.db_pipeline_depth = 8;
    for (int pack = 0; pack <= 4; pack += 4) {
        cfg.db_pipeline_pack = pack;
        lp_pg_pool *p = open_pool(&cfg);
        CHECK(all_open(p, 4));
        enum { N = 12 };
        qres qs[N];
        char nums[N][8];
        memset(qs, 0, sizeof(qs));
        int done = 0;
        for (int i = 0; i < N; i++) {
            snprintf(nums[i], sizeof(nums[i]), "%d", i);
            const char *params[] = {nums[i]};
            CHECK(lp_pg_query(p, "SELECT $1::int * 2", 1, params, on_q, &qs[i]) == 0);
        }
        lp_pg_stats st;
        lp_pg_pool_stats(p, &st);
        CHECK(st.inflight == N && st.waiting == 0);
        CHECK(st.busy == (pack ? N / pack : 4)); /* packed 4+4+4, spread 3+3+3+3 */
        for (int i = 0; i < N; i++) {
            run_until(&qs[i].done);
            CHECK(qs[i].status == 0 && atoi(val(&qs[i], 0, 0)) == i * 2);
            done += qs[i].done;
            q_clear(&qs[i]);
        }
        CHECK(done == N);
        close_pool(p);
    }

    cfg.db_pipeline_pack = 8;
    lp_pg_pool *p = open_pool(&cfg);
    CHECK(all_open(p, 4));
    qres slow = {0}, quick = {0}, fast = {0};
    CHECK(lp_pg_query(p, "SELECT pg_sleep(0.5)", 0, NULL, on_q, &slow) == 0);
    CHECK(lp_pg_query(p, "SELECT 'fast'", 0, NULL, on_q, &fast) == 0); /* packed behind it */
    sleep_loop(LP_PG_PACK_STALL_MS + 20);
    CHECK(lp_pg_query(p, "SELECT 'quick'", 0, NULL, on_q, &quick) == 0);
    lp_pg_stats st;
    lp_pg_pool_stats(p, &st);
    CHECK(st.busy == 2); /* not behind the sleeping head: an idle connection */
    acq a = {0};
    CHECK(lp_pg_acquire(p, on_acq, &a) == 0); /* a transaction never packs */
    run_until(&quick.done);
    CHECK(quick.status == 0 && !slow.done && !fast.done);
    run_until(&a.done);
    CHECK(a.status == 0 && !slow.done);
    lp_pg_release(a.conn);
    run_until(&fast.done);
    CHECK(slow.done && slow.status == 0 && fast.status == 0);
    q_clear(&slow), q_clear(&quick), q_clear(&fast);
    close_pool(p);
}

/* A pinned connection never takes multiplexed work, and an acquirer waits
 * for a connection with nothing in flight. */
static void test_multiplex_pinned(void)
{
    lp_config cfg = base_cfg;
    cfg.db_pool_size = 1;
    cfg.db_pipeline_depth = 8;
    lp_pg_pool *p = open_pool(&cfg);
    qres r;
    CHECK(q_sync(p, "SELECT 1", 0, NULL, &r) == 0);
    q_clear(&r);
    acq a = {0};
    CHECK(lp_pg_acquire(p, on_acq, &a) == 0);
    run_until(&a.done);
    CHECK(a.status == 0 && a.conn != NULL);
    CHECK(cq_sync(a.conn, "BEGIN", 0, NULL, &r) == 0);
    q_clear(&r);
    CHECK(cq_sync(a.conn, "SET LOCAL lock_timeout = '1234ms'", 0, NULL, &r) == 0);
    q_clear(&r);
    qres outside = {0};
    CHECK(lp_pg_query(p, "SELECT current_setting('lock_timeout')", 0, NULL, on_q, &outside) == 0);
    lp_pg_stats st;
    lp_pg_pool_stats(p, &st);
    CHECK(st.waiting == 1 && st.inflight == 0);
    sleep_loop(20);
    CHECK(!outside.done);
    lp_pg_release(a.conn); /* rolls back, then serves the waiter */
    run_until(&outside.done);
    CHECK(outside.status == 0 && strcmp(val(&outside, 0, 0), "0") == 0); /* not in the tx */
    q_clear(&outside);

    qres q1 = {0}, q2 = {0};
    acq b = {0};
    CHECK(lp_pg_query(p, "SELECT pg_sleep(0.05)", 0, NULL, on_q, &q1) == 0);
    CHECK(lp_pg_acquire(p, on_acq, &b) == 0);
    CHECK(lp_pg_query(p, "SELECT 2", 0, NULL, on_q, &q2) == 0);
    lp_pg_pool_stats(p, &st);
    CHECK(st.inflight == 1 && st.waiting == 2); /* FIFO: the query waits behind the acquirer */
    run_until(&b.done);
    CHECK(b.status == 0 && q1.done && q1.status == 0 && !q2.done);
    lp_pg_release(b.conn);
    run_until(&q2.done);
    CHECK(q2.status == 0);
    q_clear(&q1);
    q_clear(&q2);
    close_pool(p);
}

int main(void)
{
    const char *url = getenv("DATABASE_URL");
    if (url == NULL || *url == '\0') {
        fprintf(stderr, "DATABASE_URL is not set: this test needs a real PostgreSQL\n");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    loop = uv_default_loop();
    memset(&base_cfg, 0, sizeof(base_cfg));
    snprintf(base_cfg.database_url, sizeof(base_cfg.database_url), "%s", url);
    base_cfg.db_pool_size = 4;
    base_cfg.db_wait_timeout_ms = 2000;
    base_cfg.db_statement_timeout_ms = 5000;
    base_cfg.db_connect_timeout_ms = 2000;
    base_cfg.db_pipeline_depth = 8;

    test_basic();
    test_injection_roundtrip();
    test_prepared_cache();
    test_concurrency();
    test_wait_timeout();
    test_statement_timeout();
    test_batch();
    test_pinned();
    test_broken_connection();
    test_server_down();
    test_host_name();
    test_listen();
    test_restart();
    test_close_with_work();
    test_multiplex_order();
    test_multiplex_isolation();
    test_shared_sync();
    test_shared_timeout();
    test_bind_mismatch();
    test_multiplex_broken();
    test_multiplex_pinned();
    test_pack();

    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(loop) == 0);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
