/* vm.h — script generations and the tasks that run in them.
 *
 * A generation is a fresh LuaJIT state with every module loaded and every
 * route registered (its route table lives here, in C). A request binds to
 * the current generation when it arrives and finishes in it; a reload builds
 * the next generation first and only then makes it current, so a script that
 * fails to load leaves the old one serving (its error, file:line, is kept for
 * /healthz). A retired generation is closed when its last task ends.
 *
 * Load protocol (modules_dir = cfg->modules_dir):
 *   1. `require "shared.dispatch"` must return function(entry, req) that runs
 *      one request and returns status, body (string), headers (table);
 *   2. for every folder modules/<name>/ holding controller.lua, in name order,
 *      `require "<name>.controller"` must return function(routes), which
 *      registers routes with routes:get(pattern, [opts], fn) and friends. */
#ifndef LP_VM_H
#define LP_VM_H

#include <lua.h>

#include "host.h"
#include "http.h"
#include "task.h"

typedef struct lp_gen lp_gen;

/* Creates the VM and loads the first generation. On a load error returns
 * LP_EINVAL with the message in lp_vm_last_error(); the VM is still valid
 * (serving 503 until a reload succeeds). */
int lp_vm_open(lp_vm **vm, lp_host *host);

/* Builds and switches to a new generation. 0, or LP_EINVAL (old one kept). */
int lp_vm_reload(lp_vm *vm);

/* Watches modules_dir and reloads on change (development). */
int lp_vm_watch(lp_vm *vm);

/* The server's request handler. */
void lp_vm_handle(lp_request *req, void *vm);

/* Runs a Lua file as a task in the current generation with arg = {argv...};
 * done(ok, data) runs when it ends (ok = 1 when it returned without error). */
int lp_vm_run_file(lp_vm *vm, const char *file, int argc, char **argv,
                   void (*done)(int ok, void *data), void *data);

/* Starts a background task in generation g calling the function stored at
 * registry ref `fn_ref` of g's state with one string argument (may be NULL).
 * Used by timers and NOTIFY listeners. 0 or LP_E*. */
int lp_gen_spawn(lp_gen *g, int fn_ref, const char *arg, size_t arg_len);

/* Calls every handler registered with server.on(event, fn) in the current
 * generation, each as a background task with `payload` as argument. */
void lp_vm_emit(lp_vm *vm, const char *event, const char *payload, size_t len);

/* Pushes the current generation's event table (event → {fn...}). */
int lp_vm_push_events(lua_State *L);

/* The generation a Lua state belongs to. */
lp_gen *lp_gen_of(lua_State *L);
lua_State *lp_gen_state(lp_gen *g);
int lp_gen_retired(const lp_gen *g);

/* Runs fn(data) when g is retired (replaced by a reload) or the VM closes;
 * timers use it to stop. Returns a handle for lp_gen_cancel_retire, or NULL
 * when out of memory. */
void *lp_gen_on_retire(lp_gen *g, void (*fn)(void *data), void *data);

/* Forgets a hook that has not run (its owner went away first). */
void lp_gen_cancel_retire(lp_gen *g, void *hook);

/* Keeps a retired generation open (while something still calls into it). */
void lp_gen_ref(lp_gen *g);
void lp_gen_unref(lp_gen *g);

/* The request a task serves (NULL for background tasks or once finished). */
lp_request *lp_task_request(lp_task *t);

int lp_vm_generation(const lp_vm *vm);
const char *lp_vm_last_error(const lp_vm *vm);
size_t lp_vm_lua_kbytes(const lp_vm *vm);
int lp_vm_tasks(const lp_vm *vm); /* tasks alive, all generations */

/* Closes every generation; pending tasks are abandoned (call at exit, after
 * in-flight requests had their chance to finish). */
void lp_vm_close(lp_vm *vm);

#endif
