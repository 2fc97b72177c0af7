/* server.h — the HTTP listener and its connections.
 *
 * One lp_server per worker: a libuv TCP listener (SO_REUSEPORT, so N worker
 * processes share the port), llhttp with every lenient flag off, keep-alive
 * and pipelining (requests on one connection are answered in order, one at a
 * time), and the limits from lp_config: header size (431), body size (413,
 * from Content-Length before reading), header/body timeouts (408, then
 * close), keep-alive idle timeout, max connections. A request with both
 * Content-Length and Transfer-Encoding is refused and the connection closed.
 *
 * Complete requests go to the handler; see http.h for answering them. */
#ifndef LP_SERVER_H
#define LP_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "http.h"

typedef struct lp_metrics lp_metrics;

/* Called for every complete request; the handler owns req from then on. */
typedef void (*lp_server_handler)(lp_request *req, void *data);

typedef struct lp_server_stats {
    uint64_t connections_open;
    uint64_t connections_total;
    uint64_t requests_total;
    uint64_t requests_active;
} lp_server_stats;

/* Binds cfg->host:cfg->port and starts accepting. Returns 0 or a negative
 * libuv error (e.g. UV_EADDRINUSE). */
int lp_server_open(lp_server **srv, uv_loop_t *loop, const lp_config *cfg, lp_metrics *metrics,
                   lp_server_handler handler, void *data);

/* Graceful shutdown, step one: stop accepting, close idle connections, and
 * close the others once their current response is written. */
void lp_server_stop_accepting(lp_server *srv);

/* Closes every connection (in-flight requests see their client gone). */
void lp_server_close(lp_server *srv);

/* Frees the server; call once the loop has run the close callbacks. */
void lp_server_free(lp_server *srv);

void lp_server_stats_get(const lp_server *srv, lp_server_stats *out);

/* The port actually bound (useful with PORT=0). */
int lp_server_port(const lp_server *srv);

#endif
