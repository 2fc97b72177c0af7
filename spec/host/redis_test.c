/* redis_test.c — host/redis.c against real redis-server processes.
 *
 * REDIS_URL (exported by the test command) is the shared server for the
 * plain command tests; the fault tests start private redis-servers on free
 * ports (fork/exec) so they can stop, freeze and restart them. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "lp.h"
#include "redis.h"

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

/* ---- loop helpers ---------------------------------------------------------- */

static uv_loop_t loop;
static char prefix[64]; /* keys of this run, so parallel runs never collide */

static int guard_fired;
static void on_guard(uv_timer_t *t)
{
    guard_fired = 1;
}

/* Runs the loop until pred(arg) holds; gives up (and returns 0) after
 * `max_ms`, which only protects the suite from hanging. */
static int run_until(int (*pred)(void *), void *arg, int max_ms)
{
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    guard_fired = 0;
    uv_timer_start(&guard, on_guard, (uint64_t)max_ms, 0);
    while (!pred(arg) && !guard_fired)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return pred(arg);
}

static int flag_set(void *p)
{
    return *(int *)p != 0;
}

static int is_connected(void *p)
{
    lp_redis_stats st;
    lp_redis_get_stats(p, &st);
    return st.connected;
}

static int is_down(void *p)
{
    return !is_connected(p);
}

/* Closes the client and checks every handle it owned is gone. */
static void close_client(lp_redis *r)
{
    lp_redis_close(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_alive(&loop) == 0);
}

/* ---- one command, synchronously from the test's point of view ------------- */

typedef struct result {
    int done;
    int status;
    int type;
    long long integer;
    char str[256];
    size_t len;
    size_t elements;
    int elem_types[8];
} result;

static void keep(result *res, int status, redisReply *rep)
{
    res->done = 1;
    res->status = status;
    if (rep == NULL) return;
    res->type = rep->type;
    res->integer = rep->integer;
    if (rep->str != NULL && rep->len < sizeof(res->str)) {
        memcpy(res->str, rep->str, rep->len);
        res->len = rep->len;
    }
    res->elements = rep->elements;
    for (size_t i = 0; i < rep->elements && i < 8; i++)
        res->elem_types[i] = rep->element[i]->type;
}

static void on_result(int status, redisReply *rep, void *data)
{
    keep(data, status, rep);
}

/* argv as NUL-terminated strings, except that a NULL-terminated list ends it. */
static int send_cmd(lp_redis *r, result *res, const char *a0, const char *a1, const char *a2,
                    const char *a3)
{
    const char *argv[4] = {a0, a1, a2, a3};
    size_t argvlen[4];
    int argc = 0;
    while (argc < 4 && argv[argc] != NULL) {
        argvlen[argc] = strlen(argv[argc]);
        argc++;
    }
    memset(res, 0, sizeof(*res));
    return lp_redis_command(r, argc, argv, argvlen, on_result, res);
}

static result cmd(lp_redis *r, const char *a0, const char *a1, const char *a2, const char *a3)
{
    result res;
    int rc = send_cmd(r, &res, a0, a1, a2, a3);
    if (rc != 0) {
        res.done = 1;
        res.status = rc;
        return res;
    }
    CHECK(run_until(flag_set, &res.done, 10000));
    return res;
}

static const char *key(const char *name)
{
    static char buf[4][128];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s:%s", prefix, name);
    return buf[i];
}

static lp_redis *open_connected(const char *url, int timeout_ms)
{
    lp_redis *r = NULL;
    CHECK(lp_redis_open(&r, &loop, url, timeout_ms) == 0);
    if (r == NULL) return NULL;
    CHECK(run_until(is_connected, r, 10000));
    return r;
}

/* ---- private redis-server processes ------------------------------------------ */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* Starts redis-server on `port` (0: unix socket only) and waits until it
 * answers PING. Extra arguments come in pairs, NULL-terminated. */
static pid_t start_redis(int port, const char *sock, const char *password)
{
    char portbuf[16];
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        const char *args[16];
        int n = 0;
        args[n++] = "redis-server";
        args[n++] = "--port", args[n++] = portbuf;
        args[n++] = "--bind", args[n++] = "127.0.0.1";
        args[n++] = "--save", args[n++] = "";
        args[n++] = "--appendonly", args[n++] = "no";
        if (sock != NULL) args[n++] = "--unixsocket", args[n++] = sock;
        if (password != NULL) args[n++] = "--requirepass", args[n++] = password;
        args[n] = NULL;
        int devnull = open("/dev/null", 1);
        dup2(devnull, 1);
        execvp("redis-server", (char **)args);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        redisContext *c = sock != NULL ? redisConnectUnix(sock) : redisConnect("127.0.0.1", port);
        int up = 0;
        if (c != NULL && !c->err) {
            redisReply *rep = redisCommand(c, "PING");
            up = rep != NULL; /* PONG, or -NOAUTH from a password server */
            if (rep != NULL) freeReplyObject(rep);
        }
        if (c != NULL) redisFree(c);
        if (up) return pid;
        usleep(10000);
    }
    fprintf(stderr, "redis-server on port %d did not start\n", port);
    exit(1);
}

static void stop_redis(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_urls(void)
{
    const char *bad[] = {"http://127.0.0.1", "redis://",        "redis://h:99999",  "redis://h:x",
                         "redis://h/notadb", "unix://relative", "unix:///s?nope=1", "redis://[::1"};
    for (size_t i = 0; i < LP_ARRAY_SIZE(bad); i++) {
        lp_redis *r = (lp_redis *)1;
        CHECK(lp_redis_open(&r, &loop, bad[i], 1000) == LP_EINVAL);
        CHECK(r == NULL);
    }
}

static void test_commands(const char *url)
{
    lp_redis *r = open_connected(url, 2000);
    if (r == NULL) return;

    /* Binary safe: a NUL inside both key and value. */
    char k[128];
    size_t klen = (size_t)snprintf(k, sizeof(k), "%s:bin", prefix) + 2;
    k[klen - 2] = '\0', k[klen - 1] = 'z';
    const char val[] = {'a', '\0', 'b', '\n', 'c'};
    const char *set_argv[] = {"SET", k, val};
    size_t set_len[] = {3, klen, sizeof(val)};
    result res;
    memset(&res, 0, sizeof(res));
    CHECK(lp_redis_command(r, 3, set_argv, set_len, on_result, &res) == 0);
    CHECK(res.done == 0); /* callbacks never run inside the call */
    CHECK(run_until(flag_set, &res.done, 10000));
    CHECK(res.status == 0 && res.type == REDIS_REPLY_STATUS && strcmp(res.str, "OK") == 0);
    const char *get_argv[] = {"GET", k};
    size_t get_len[] = {3, klen};
    memset(&res, 0, sizeof(res));
    CHECK(lp_redis_command(r, 2, get_argv, get_len, on_result, &res) == 0);
    CHECK(run_until(flag_set, &res.done, 10000));
    CHECK(res.status == 0 && res.type == REDIS_REPLY_STRING && res.len == sizeof(val) &&
          memcmp(res.str, val, sizeof(val)) == 0);

    res = cmd(r, "DEL", key("n"), NULL, NULL);
    CHECK(res.status == 0 && res.type == REDIS_REPLY_INTEGER);
    res = cmd(r, "INCRBY", key("n"), "41", NULL);
    CHECK(res.status == 0 && res.type == REDIS_REPLY_INTEGER && res.integer == 41);
    res = cmd(r, "GET", key("missing"), NULL, NULL);
    CHECK(res.status == 0 && res.type == REDIS_REPLY_NIL);
    res = cmd(r, "MGET", key("n"), key("missing"), NULL);
    CHECK(res.status == 0 && res.type == REDIS_REPLY_ARRAY && res.elements == 2 &&
          res.elem_types[0] == REDIS_REPLY_STRING && res.elem_types[1] == REDIS_REPLY_NIL);
    /* An error reply is an answer, not a client failure. */
    res = cmd(r, "NOSUCHCOMMAND", NULL, NULL, NULL);
    CHECK(res.status == 0 && res.type == REDIS_REPLY_ERROR && strstr(res.str, "ERR") != NULL);

    /* Commands that would break reply ordering are refused up front. */
    CHECK(send_cmd(r, &res, "SUBSCRIBE", "ch", NULL, NULL) == LP_EINVAL);
    CHECK(send_cmd(r, &res, "monitor", NULL, NULL, NULL) == LP_EINVAL);
    CHECK(lp_redis_command(r, 0, NULL, NULL, on_result, &res) == LP_EINVAL);

    lp_redis_stats st;
    lp_redis_get_stats(r, &st);
    CHECK(st.connected == 1 && st.reconnects == 0);
    close_client(r);
}

typedef struct pipe_result {
    int done, status;
    size_t n;
    int types[4];
    char strs[4][64];
    long long ints[4];
} pipe_result;

static void on_pipeline(int status, redisReply **replies, size_t n, void *data)
{
    pipe_result *p = data;
    p->done = 1;
    p->status = status;
    p->n = n;
    for (size_t i = 0; i < n && i < 4; i++) {
        p->types[i] = replies[i]->type;
        p->ints[i] = replies[i]->integer;
        if (replies[i]->str != NULL)
            snprintf(p->strs[i], sizeof(p->strs[i]), "%.*s", (int)replies[i]->len, replies[i]->str);
    }
}

static void test_pipeline(const char *url)
{
    lp_redis *r = open_connected(url, 2000);
    if (r == NULL) return;
    const char *k = key("pipe");
    const char *argv[] = {"SET", k, "v1", "GET", k, "INCR", k, "APPEND", k, "2"};
    size_t argvlen[10];
    for (int i = 0; i < 10; i++)
        argvlen[i] = strlen(argv[i]);
    int argcs[] = {3, 2, 2, 3};
    pipe_result p;
    memset(&p, 0, sizeof(p));
    CHECK(lp_redis_pipeline(r, 4, argcs, argv, argvlen, on_pipeline, &p) == 0);
    CHECK(run_until(flag_set, &p.done, 10000));
    CHECK(p.status == 0 && p.n == 4);
    CHECK(p.types[0] == REDIS_REPLY_STATUS && strcmp(p.strs[0], "OK") == 0);
    CHECK(p.types[1] == REDIS_REPLY_STRING && strcmp(p.strs[1], "v1") == 0);
    CHECK(p.types[2] == REDIS_REPLY_ERROR); /* INCR on "v1" */
    CHECK(p.types[3] == REDIS_REPLY_INTEGER && p.ints[3] == 3);
    close_client(r);
}

typedef struct ping_result {
    int done, status;
} ping_result;

static void on_ping(int status, void *data)
{
    ping_result *p = data;
    p->done = 1;
    p->status = status;
}

static void test_ping_and_hostname(int port)
{
    char url[128];
    snprintf(url, sizeof(url), "redis://localhost:%d", port); /* resolved off the loop */
    lp_redis *r = open_connected(url, 2000);
    if (r == NULL) return;
    ping_result p = {0, 1};
    CHECK(lp_redis_ping(r, on_ping, &p) == 0);
    CHECK(run_until(flag_set, &p.done, 10000));
    CHECK(p.status == 0);
    close_client(r);
}

/* A command the server holds (BLPOP) runs past its deadline: the caller gets
 * LP_ETIMEDOUT, the command queued behind it fails instead of receiving the
 * wrong reply, and the client reconnects by itself. */
static void test_timeout(const char *url)
{
    lp_redis *r = open_connected(url, 100);
    if (r == NULL) return;
    result blocked, behind;
    CHECK(send_cmd(r, &blocked, "BLPOP", key("empty-list"), "5", NULL) == 0);
    CHECK(send_cmd(r, &behind, "PING", NULL, NULL, NULL) == 0);
    CHECK(run_until(flag_set, &blocked.done, 10000));
    CHECK(blocked.status == LP_ETIMEDOUT);
    CHECK(behind.done && behind.status == LP_EUNAVAIL);
    CHECK(run_until(is_connected, r, 10000));
    result ok = cmd(r, "PING", NULL, NULL, NULL);
    CHECK(ok.status == 0 && strcmp(ok.str, "PONG") == 0);
    lp_redis_stats st;
    lp_redis_get_stats(r, &st);
    CHECK(st.reconnects == 1 && st.errors >= 2);
    close_client(r);
}

/* A frozen server (SIGSTOP): the handshake cannot finish either, so every
 * command times out instead of hanging, and all is well once it resumes. */
static void test_frozen_server(void)
{
    int port = free_port();
    pid_t pid = start_redis(port, NULL, NULL);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    lp_redis *r = open_connected(url, 100);
    if (r == NULL) return;
    kill(pid, SIGSTOP);
    for (int i = 0; i < 3; i++) {
        result res = cmd(r, "PING", NULL, NULL, NULL);
        CHECK(res.status == LP_ETIMEDOUT || res.status == LP_EUNAVAIL);
    }
    kill(pid, SIGCONT);
    CHECK(run_until(is_connected, r, 10000));
    result res = cmd(r, "PING", NULL, NULL, NULL);
    CHECK(res.status == 0);
    close_client(r);
    stop_redis(pid);
}

/* Redis stops: pending and new commands fail with LP_EUNAVAIL — with a 10 s
 * deadline, so a status of LP_EUNAVAIL (not LP_ETIMEDOUT) shows nothing waited
 * for it. Redis comes back on the same port: the client reconnects alone. */
static void test_down_then_up(void)
{
    int port = free_port();
    pid_t pid = start_redis(port, NULL, NULL);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    lp_redis *r = open_connected(url, 10000);
    if (r == NULL) return;
    CHECK(cmd(r, "SET", key("k"), "before", NULL).status == 0);

    result pending;
    CHECK(send_cmd(r, &pending, "BLPOP", key("empty"), "0", NULL) == 0);
    uv_run(&loop, UV_RUN_NOWAIT); /* flush it to the server */
    stop_redis(pid);
    CHECK(run_until(flag_set, &pending.done, 10000));
    CHECK(pending.status == LP_EUNAVAIL);
    CHECK(run_until(is_down, r, 10000));

    int refused_at_once = 0;
    for (int i = 0; i < 20; i++) {
        result res;
        int rc = send_cmd(r, &res, "GET", key("k"), NULL, NULL);
        if (rc == LP_EUNAVAIL) {
            refused_at_once++;
        } else {
            CHECK(rc == 0);
            CHECK(run_until(flag_set, &res.done, 10000));
            CHECK(res.status == LP_EUNAVAIL);
        }
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    CHECK(refused_at_once > 0);
    ping_result p = {0, 0};
    int rc = lp_redis_ping(r, on_ping, &p);
    if (rc == 0) CHECK(run_until(flag_set, &p.done, 10000));
    CHECK(rc == LP_EUNAVAIL || p.status == LP_EUNAVAIL);

    pid = start_redis(port, NULL, NULL);
    CHECK(run_until(is_connected, r, 10000));
    result res = cmd(r, "SET", key("k"), "after", NULL);
    CHECK(res.status == 0 && strcmp(res.str, "OK") == 0);
    lp_redis_stats st;
    lp_redis_get_stats(r, &st);
    CHECK(st.connected == 1 && st.reconnects == 1 && st.errors >= 20);
    close_client(r);
    stop_redis(pid);
}

/* AUTH with a %-encoded password and SELECT from the URL, checked from a
 * second, plain connection. A wrong password never becomes ready. */
static void test_auth_select(void)
{
    int port = free_port();
    pid_t pid = start_redis(port, NULL, "p@ss:w/rd");
    char url[128];
    snprintf(url, sizeof(url), "redis://:p%%40ss%%3Aw%%2Frd@127.0.0.1:%d/3", port);
    lp_redis *r = open_connected(url, 2000);
    if (r == NULL) return;
    CHECK(cmd(r, "SET", "authkey", "in-db-3", NULL).status == 0);
    close_client(r);

    redisContext *c = redisConnect("127.0.0.1", port);
    redisReply *rep = redisCommand(c, "AUTH %s", "p@ss:w/rd");
    freeReplyObject(rep);
    rep = redisCommand(c, "SELECT 3");
    freeReplyObject(rep);
    rep = redisCommand(c, "GET authkey");
    CHECK(rep != NULL && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "in-db-3") == 0);
    freeReplyObject(rep);
    redisFree(c);

    snprintf(url, sizeof(url), "redis://:wrong@127.0.0.1:%d", port);
    r = NULL;
    CHECK(lp_redis_open(&r, &loop, url, 2000) == 0);
    result res;
    int rc = send_cmd(r, &res, "GET", "authkey", NULL, NULL);
    if (rc == 0) CHECK(run_until(flag_set, &res.done, 10000));
    CHECK(rc == LP_EUNAVAIL || res.status == LP_EUNAVAIL);
    lp_redis_stats st;
    lp_redis_get_stats(r, &st);
    CHECK(st.connected == 0 && st.errors > 0);
    close_client(r);
    stop_redis(pid);
}

static void test_unix_socket(void)
{
    char sock[128];
    snprintf(sock, sizeof(sock), "/tmp/lp-redis-test-%d.sock", (int)getpid());
    pid_t pid = start_redis(0, sock, NULL);
    char url[192];
    snprintf(url, sizeof(url), "unix://%s?db=2", sock);
    lp_redis *r = open_connected(url, 2000);
    if (r == NULL) return;
    CHECK(cmd(r, "SET", "unixkey", "x", NULL).status == 0);
    result res = cmd(r, "GET", "unixkey", NULL, NULL);
    CHECK(res.status == 0 && strcmp(res.str, "x") == 0);
    close_client(r);
    stop_redis(pid);
    unlink(sock);
}

/* Closing answers everything pending with LP_ECLOSED before it returns and
 * leaves no handle behind, whatever state the connection is in. */
static void test_close(const char *url)
{
    lp_redis *r = open_connected(url, 10000);
    if (r == NULL) return;
    result blocked;
    CHECK(send_cmd(r, &blocked, "BLPOP", key("never"), "0", NULL) == 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    const char *argv[] = {"PING", "PING"};
    size_t argvlen[] = {4, 4};
    int argcs[] = {1, 1};
    pipe_result p;
    memset(&p, 0, sizeof(p));
    CHECK(lp_redis_pipeline(r, 2, argcs, argv, argvlen, on_pipeline, &p) == 0);
    lp_redis_close(r);
    CHECK(blocked.done && blocked.status == LP_ECLOSED);
    CHECK(p.done && p.status == LP_ECLOSED);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_alive(&loop) == 0);

    /* Closing while connecting, while resolving, and while waiting to retry. */
    const char *states[] = {url, "redis://localhost:1", "redis://127.0.0.1:1"};
    for (size_t i = 0; i < LP_ARRAY_SIZE(states); i++) {
        r = NULL;
        CHECK(lp_redis_open(&r, &loop, states[i], 1000) == 0);
        if (i == 2) uv_run(&loop, UV_RUN_NOWAIT);
        close_client(r);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const char *url = getenv("REDIS_URL");
    if (url == NULL || *url == '\0') {
        fprintf(stderr, "REDIS_URL is not set: the Redis tests need a real server\n");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    snprintf(prefix, sizeof(prefix), "lp-redis-test:%d", (int)getpid());
    uv_loop_init(&loop);

    test_urls();
    test_commands(url);
    test_pipeline(url);
    test_timeout(url);
    test_close(url);
    test_down_then_up();
    test_frozen_server();
    test_auth_select();
    test_unix_socket();
    int port = free_port();
    pid_t pid = start_redis(port, NULL, NULL);
    test_ping_and_hostname(port);
    stop_redis(pid);

    CHECK(uv_loop_close(&loop) == 0);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
