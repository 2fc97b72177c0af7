/* pg_bench.c — pipeline mode vs one-at-a-time for a request's batch of queries.
 *
 * A request that needs K primary-key lookups either awaits them one by one
 * (K round trips) or sends them as one lp_pg_batch (one round trip). This
 * runs both over the same pool in the same process and prints the figures
 * and their ratio. DATABASE_URL names the server; arguments (all optional):
 * iterations, K, concurrent requests, pool size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lp.h"
#include "pg.h"

static uv_loop_t *loop;
static int K = 10;
static char select_sql[128];

typedef struct req req;
typedef struct run {
    lp_pg_pool *pool;
    int pipeline;
    int remaining; /* requests still to start */
    int active;    /* requests in flight      */
    int errors;
    long rows;
} run;

struct req {
    run *r;
    int step;
    char ids[64][16];
    const char *params[64][1];
};

static void req_start(req *q);

static void req_done(req *q)
{
    run *r = q->r;
    if (r->remaining > 0) {
        r->remaining--;
        req_start(q);
        return;
    }
    r->active--;
    free(q);
}

static void on_seq(int status, PGresult *res, void *data)
{
    req *q = data;
    if (status != 0)
        q->r->errors++;
    else
        q->r->rows += PQntuples(res);
    PQclear(res);
    if (++q->step < K && status == 0) {
        if (lp_pg_query(q->r->pool, select_sql, 1, q->params[q->step], on_seq, q) != 0) {
            q->r->errors++;
            req_done(q);
        }
        return;
    }
    req_done(q);
}

static void on_batch(int status, PGresult **res, int n, void *data)
{
    req *q = data;
    if (status != 0) q->r->errors++;
    for (int i = 0; i < n; i++) {
        if (res[i] != NULL) q->r->rows += PQntuples(res[i]);
        PQclear(res[i]);
    }
    req_done(q);
}

static void req_start(req *q)
{
    for (int i = 0; i < K; i++) {
        snprintf(q->ids[i], sizeof(q->ids[i]), "%d", 1 + rand() % 1000);
        q->params[i][0] = q->ids[i];
    }
    q->step = 0;
    int err;
    if (q->r->pipeline) {
        lp_pg_query_spec spec[64];
        for (int i = 0; i < K; i++)
            spec[i] = (lp_pg_query_spec){select_sql, 1, q->params[i]};
        err = lp_pg_batch(q->r->pool, spec, K, on_batch, q);
    } else {
        err = lp_pg_query(q->r->pool, select_sql, 1, q->params[0], on_seq, q);
    }
    if (err != 0) {
        q->r->errors++;
        req_done(q);
    }
}

static double measure(lp_pg_pool *pool, int pipeline, int iterations, int concurrency)
{
    run r = {pool, pipeline, iterations - concurrency, concurrency, 0, 0};
    double t0 = lp_now_ms();
    for (int i = 0; i < concurrency; i++) {
        req *q = calloc(1, sizeof(*q));
        q->r = &r;
        req_start(q);
    }
    while (r.active > 0)
        uv_run(loop, UV_RUN_ONCE);
    double ms = lp_now_ms() - t0;
    if (r.errors || r.rows != (long)iterations * K)
        fprintf(stderr, "bench: %d errors, %ld rows (want %ld)\n", r.errors, r.rows,
                (long)iterations * K);
    return ms;
}

typedef struct one {
    int done, status;
} one;

static void on_one(int status, PGresult *res, void *data)
{
    one *o = data;
    o->done = 1;
    o->status = status;
    PQclear(res);
}

static int exec(lp_pg_pool *pool, const char *sql)
{
    one o = {0};
    if (lp_pg_query(pool, sql, 0, NULL, on_one, &o) != 0) return -1;
    while (!o.done)
        uv_run(loop, UV_RUN_ONCE);
    return o.status;
}

int main(int argc, char **argv)
{
    const char *url = getenv("DATABASE_URL");
    if (url == NULL || *url == '\0') {
        fprintf(stderr, "usage: DATABASE_URL=... pg_bench [iterations K concurrency pool]\n");
        return 2;
    }
    int iterations = argc > 1 ? atoi(argv[1]) : 2000;
    K = argc > 2 ? atoi(argv[2]) : 10;
    int concurrency = argc > 3 ? atoi(argv[3]) : 1;
    lp_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.database_url, sizeof(cfg.database_url), "%s", url);
    cfg.db_pool_size = argc > 4 ? atoi(argv[4]) : 4;
    cfg.db_wait_timeout_ms = 60000;
    cfg.db_statement_timeout_ms = 5000;
    cfg.db_connect_timeout_ms = 2000;
    if (iterations < 1 || K < 1 || K > 64 || concurrency < 1 || concurrency > iterations ||
        cfg.db_pool_size < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    loop = uv_default_loop();
    lp_pg_pool *pool;
    if (lp_pg_pool_open(&pool, loop, &cfg) != 0) return 1;

    char table[64], sql[256];
    snprintf(table, sizeof(table), "lp_bench_%d", (int)getpid());
    snprintf(sql, sizeof(sql),
             "CREATE TABLE %s AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 1000) g",
             table);
    if (exec(pool, sql) != 0) {
        fprintf(stderr, "cannot create %s\n", table);
        return 1;
    }
    snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD PRIMARY KEY (id)", table);
    exec(pool, sql);
    snprintf(select_sql, sizeof(select_sql), "SELECT id, v FROM %s WHERE id = $1", table);

    measure(pool, 0, iterations / 10 + concurrency, concurrency); /* warm up: connect, prepare */
    measure(pool, 1, iterations / 10 + concurrency, concurrency);
    double seq = measure(pool, 0, iterations, concurrency);
    double pipe = measure(pool, 1, iterations, concurrency);

    printf("pg_bench: %d requests x %d queries, %d concurrent, pool %d\n", iterations, K,
           concurrency, cfg.db_pool_size);
    printf("  sequential: %8.1f ms  %9.0f requests/s  %9.0f queries/s  %6.1f us/request\n", seq,
           iterations / seq * 1000, (double)iterations * K / seq * 1000, seq * 1000 / iterations);
    printf("  pipeline:   %8.1f ms  %9.0f requests/s  %9.0f queries/s  %6.1f us/request\n", pipe,
           iterations / pipe * 1000, (double)iterations * K / pipe * 1000,
           pipe * 1000 / iterations);
    printf("  pipeline/sequential throughput: %.2fx\n", seq / pipe);

    snprintf(sql, sizeof(sql), "DROP TABLE %s", table);
    exec(pool, sql);
    lp_pg_pool_close(pool);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
}
