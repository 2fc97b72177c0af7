/* task.h — a Lua coroutine that host I/O may suspend and resume.
 *
 * Every request, timer callback, NOTIFY listener and background job runs as a
 * task: a coroutine of one script generation. A Lua binding that waits on I/O
 * starts the operation, then returns lp_task_yield(L). When the result
 * arrives on the loop, the binding's callback calls lp_task_resume() with a
 * "push" function that places the return values on the coroutine's stack —
 * the coroutine is only ever resumed from the loop, never from inside another
 * coroutine (the luv #734 lesson).
 *
 * A binding must resume its task exactly once per yield. The I/O layers
 * guarantee their callback runs (with an error if the subsystem closes), so
 * a task never hangs and never outlives its generation.
 *
 *     static int l_sleep(lua_State *L)
 *     {
 *         lp_task *t = lp_task_check(L);          // raises outside a task
 *         start_timer(..., on_timer, t);
 *         return lp_task_yield(L);
 *     }
 *     static void on_timer(uv_timer_t *h) { lp_task_resume(t, NULL, NULL); }
 */
#ifndef LP_TASK_H
#define LP_TASK_H

#include <lua.h>

typedef struct lp_task lp_task;

/* Pushes the values the yielded Lua call returns; returns how many. Runs on
 * the loop, with `co` the suspended coroutine. May not yield or raise. */
typedef int (*lp_task_push_fn)(lua_State *co, void *data);

/* The task whose coroutine is L, or NULL when L is not a task (for example
 * while a module is being required: I/O is not allowed there). */
lp_task *lp_task_current(lua_State *L);

/* Like lp_task_current but raises a Lua error when L is not a task. */
lp_task *lp_task_check(lua_State *L);

/* Suspends the calling coroutine; use as `return lp_task_yield(L);`. */
int lp_task_yield(lua_State *L);

/* Resumes a task suspended by lp_task_yield. `push` may be NULL (no values). */
void lp_task_resume(lp_task *t, lp_task_push_fn push, void *data);

/* True while the task's client is still there: a request whose connection
 * closed reports 0; background tasks always report 1. */
int lp_task_client_alive(lp_task *t);

/* The main state of the task's script generation. It runs nothing while the
 * loop runs callbacks, so a push function may make protected Lua calls there
 * (a push may not call Lua on the suspended `co`) and lua_xmove the values. */
lua_State *lp_task_state(lp_task *t);

/* The request id of a request task ("" for background tasks). */
const char *lp_task_request_id(lp_task *t);

#endif
