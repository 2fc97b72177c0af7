/* main.c — the `lifeplan` command: serve | run | migrate | collect | jobs.
 *
 * `serve` with one worker runs the loop in this process. With N workers the
 * process becomes a small supervisor: it forks N workers that each bind the
 * port with SO_REUSEPORT and run their own loop, forwards SIGTERM/SIGINT/
 * SIGHUP to them, restarts a worker that dies unexpectedly, and exits 0 once
 * every worker has finished a graceful shutdown. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "bindings.h"
#include "cache.h"
#include "config.h"
#include "host.h"
#include "log.h"
#include "lp.h"
#include "metrics.h"
#include "ops.h"
#include "server.h"
#include "subsystems.h"
#include "vm.h"

static void usage(void)
{
    fputs("usage: lifeplan serve [--dev] [--workers N] [--port N]\n"
          "       lifeplan run FILE.lua [ARGS...]   run a script as a task (host API available)\n"
          "       lifeplan migrate [--status]\n"
          "       lifeplan collect --source URL|FILE [--dry-run]\n"
          "       lifeplan jobs run NAME\n",
          stderr);
}

/* ---- one worker ------------------------------------------------------- */

typedef struct worker {
    lp_host host;
    uv_loop_t loop;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain;
    double drain_deadline;
    int stopping;
    int exit_code;
} worker;

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Everything is answered (or the deadline passed): close every handle so
 * uv_run returns. */
static void worker_close(worker *w)
{
    close_handle((uv_handle_t *)&w->sig_term);
    close_handle((uv_handle_t *)&w->sig_int);
    close_handle((uv_handle_t *)&w->sig_hup);
    close_handle((uv_handle_t *)&w->drain);
    if (w->host.server) lp_server_close(w->host.server);
    lp_subsystems_close(&w->host); /* resumes waiting tasks while the VM is alive */
    lp_vm_close(w->host.vm);
}

static void on_drain(uv_timer_t *t)
{
    worker *w = t->data;
    lp_server_stats st = {0};
    if (w->host.server) lp_server_stats_get(w->host.server, &st);
    if (st.requests_active == 0 || lp_now_ms() >= w->drain_deadline) {
        if (st.requests_active)
            lp_logf("warn", "shutdown deadline passed with %llu requests in flight",
                    (unsigned long long)st.requests_active);
        uv_timer_stop(t);
        worker_close(w);
    }
}

static void worker_stop(worker *w)
{
    if (w->stopping) return;
    w->stopping = 1;
    w->host.shutting_down = 1;
    lp_logf("info", "shutting down: no new connections, finishing in-flight requests");
    if (w->host.server) lp_server_stop_accepting(w->host.server);
    w->drain_deadline = lp_now_ms() + w->host.cfg->shutdown_timeout_ms;
    uv_timer_start(&w->drain, on_drain, 0, 20);
}

static void on_signal(uv_signal_t *s, int signum)
{
    worker *w = s->data;
    if (signum == SIGHUP) {
        lp_logf("info", "SIGHUP: reloading scripts");
        lp_vm_reload(w->host.vm);
        return;
    }
    worker_stop(w);
}

static int worker_init(worker *w, const lp_config *cfg, int worker_id)
{
    memset(w, 0, sizeof(*w));
    lp_log_set_worker(worker_id);
    uv_loop_init(&w->loop);
    w->host.loop = &w->loop;
    w->host.cfg = cfg;
    w->host.worker_id = worker_id;
    w->host.metrics = lp_metrics_new();
    w->host.cache = lp_cache_new(cfg->cache_max_entries);
    if (w->host.metrics == NULL || w->host.cache == NULL) return LP_ENOMEM;
    uv_signal_init(&w->loop, &w->sig_term);
    uv_signal_init(&w->loop, &w->sig_int);
    uv_signal_init(&w->loop, &w->sig_hup);
    uv_timer_init(&w->loop, &w->drain);
    w->sig_term.data = w->sig_int.data = w->sig_hup.data = w->drain.data = w;
    uv_signal_start(&w->sig_term, on_signal, SIGTERM);
    uv_signal_start(&w->sig_int, on_signal, SIGINT);
    uv_signal_start(&w->sig_hup, on_signal, SIGHUP);
    return lp_subsystems_open(&w->host);
}

static void worker_free(worker *w)
{
    /* Run the close callbacks, then free what outlives the handles. */
    uv_run(&w->loop, UV_RUN_DEFAULT);
    lp_server_free(w->host.server);
    lp_metrics_free(w->host.metrics);
    lp_cache_free(w->host.cache);
    lp_match_state_free(&w->host);
    lp_ops_close(&w->host);
    if (uv_loop_close(&w->loop) != 0) lp_logf("warn", "loop closed with handles still open");
}

static int worker_serve(const lp_config *cfg, int worker_id)
{
    worker w;
    if (worker_init(&w, cfg, worker_id) != 0) {
        lp_logf("error", "cannot initialise the worker");
        return 1;
    }
    if (lp_vm_open(&w.host.vm, &w.host) != 0)
        lp_logf("error", "scripts failed to load: %s (serving 503 until fixed)",
                lp_vm_last_error(w.host.vm));
    if (cfg->dev) lp_vm_watch(w.host.vm);
    int rc = lp_server_open(&w.host.server, &w.loop, cfg, w.host.metrics, lp_vm_handle, w.host.vm);
    if (rc != 0) {
        lp_logf("error", "cannot listen on %s:%d: %s", cfg->host, cfg->port, uv_strerror(rc));
        worker_close(&w);
        worker_free(&w);
        return 1;
    }
    lp_logf("info", "listening on http://%s:%d (worker %d, pid %d%s)", cfg->host,
            lp_server_port(w.host.server), worker_id, (int)getpid(), cfg->dev ? ", dev" : "");
    uv_run(&w.loop, UV_RUN_DEFAULT);
    worker_free(&w);
    lp_logf("info", "worker %d stopped", worker_id);
    return 0;
}

/* ---- supervisor ------------------------------------------------------- */

static int supervise(const lp_config *cfg)
{
    int n = cfg->workers;
    pid_t *pids = calloc((size_t)n, sizeof(pid_t));
    if (pids == NULL) return 1;
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);

    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            sigprocmask(SIG_SETMASK, &old, NULL);
            free(pids);
            exit(worker_serve(cfg, i));
        }
        pids[i] = pid;
    }
    lp_logf("info", "supervisor pid %d started %d workers", (int)getpid(), n);
    int stopping = 0, alive = n, status = 0;
    while (alive > 0) {
        int sig;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGCHLD) {
            int st;
            pid_t pid;
            while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
                for (int i = 0; i < n; i++) {
                    if (pids[i] != pid) continue;
                    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) status = 1;
                    if (stopping) {
                        pids[i] = 0;
                        alive--;
                    } else {
                        lp_logf("error", "worker %d (pid %d) died; restarting", i, (int)pid);
                        pid_t np = fork();
                        if (np == 0) {
                            sigprocmask(SIG_SETMASK, &old, NULL);
                            free(pids);
                            exit(worker_serve(cfg, i));
                        }
                        pids[i] = np;
                    }
                }
            }
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            stopping = 1;
            status = 0;
        }
        for (int i = 0; i < n; i++)
            if (pids[i] > 0) kill(pids[i], sig == SIGINT ? SIGTERM : sig);
    }
    free(pids);
    return status;
}

/* ---- run FILE --------------------------------------------------------- */

static void on_script_exit(uv_timer_t *t)
{
    worker_close(t->data);
}

/* Runs inside the task's last resume (often from an I/O callback): closing
 * the VM and the subsystems here would pull the ground from under both, so
 * close on the next loop turn. */
static void on_script_done(int ok, void *data)
{
    worker *w = data;
    w->exit_code = ok ? 0 : 1;
    uv_timer_start(&w->drain, on_script_exit, 0, 0);
}

static int run_script(const lp_config *cfg, const char *file, int argc, char **argv)
{
    worker w;
    if (worker_init(&w, cfg, 0) != 0) return 1;
    if (lp_vm_open(&w.host.vm, &w.host) != 0) {
        fprintf(stderr, "lifeplan: scripts failed to load: %s\n", lp_vm_last_error(w.host.vm));
        worker_close(&w);
        worker_free(&w);
        return 1;
    }
    w.exit_code = 1;
    if (lp_vm_run_file(w.host.vm, file, argc, argv, on_script_done, &w) != 0) {
        fprintf(stderr, "lifeplan: cannot run %s\n", file);
        worker_close(&w);
    } else {
        uv_run(&w.loop, UV_RUN_DEFAULT);
    }
    worker_free(&w);
    return w.exit_code;
}

/* A command implemented as a script under modules/ (collect, jobs). */
static int run_module_script(const lp_config *cfg, const char *rel, int argc, char **argv)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", cfg->modules_dir, rel);
    return run_script(cfg, path, argc, argv);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fputs("lifeplan: libsodium failed to initialise\n", stderr);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    lp_config cfg;
    lp_config_load(&cfg);
    if (getenv("LOG_REQUESTS") && strcmp(getenv("LOG_REQUESTS"), "0") == 0) lp_log_set_requests(0);
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0) {
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--dev") == 0) {
                cfg.dev = 1;
                cfg.production = 0;
            } else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
                cfg.workers = atoi(argv[++i]);
                if (cfg.workers < 1) cfg.workers = 1;
            } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
                cfg.port = atoi(argv[++i]);
            } else {
                usage();
                return 2;
            }
        }
        if (lp_subsystems_check(&cfg) != 0) return 1;
        return cfg.workers > 1 ? supervise(&cfg) : worker_serve(&cfg, 0);
    }
    if (strcmp(cmd, "run") == 0 && argc >= 3) return run_script(&cfg, argv[2], argc - 3, argv + 3);
    if (strcmp(cmd, "migrate") == 0) return lp_subsystems_migrate(&cfg, argc - 2, argv + 2);
    if (strcmp(cmd, "collect") == 0)
        return run_module_script(&cfg, "policy/collect.lua", argc - 2, argv + 2);
    if (strcmp(cmd, "jobs") == 0 && argc >= 4 && strcmp(argv[2], "run") == 0)
        return run_module_script(&cfg, "notification/jobs.lua", argc - 3, argv + 3);
    usage();
    return 2;
}
