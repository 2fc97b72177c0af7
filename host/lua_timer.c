/* lua_timer.c — `lp.timer`: sleeping and scheduled callbacks on the loop.
 *
 *   timer.sleep(ms)          suspends the calling task for ms milliseconds
 *   timer.after(ms, fn)      runs fn() once, as a new background task
 *   timer.every(ms, fn)      runs fn() every ms milliseconds, each run a task
 *   timer.monotonic_ms()     a monotonic clock in milliseconds
 *
 * Scheduled callbacks belong to the generation that created them: a reload
 * stops them (the new generation's modules schedule their own), so a reload
 * never doubles a periodic job. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <uv.h>

#include "bindings.h"
#include "host.h"
#include "lp.h"
#include "task.h"
#include "vm.h"

typedef struct sleeper {
    uv_timer_t timer;
    lp_task *task;
} sleeper;

static void on_sleeper_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_sleep(uv_timer_t *t)
{
    sleeper *s = t->data;
    lp_task *task = s->task;
    uv_close((uv_handle_t *)t, on_sleeper_closed);
    lp_task_resume(task, NULL, NULL);
}

static int l_sleep(lua_State *L)
{
    lua_Number ms = luaL_checknumber(L, 1);
    lp_task *t = lp_task_check(L);
    sleeper *s = malloc(sizeof(*s));
    if (s == NULL) return luaL_error(L, "out of memory");
    s->task = t;
    uv_timer_init(lp_host_from(L)->loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_sleep, ms > 0 ? (uint64_t)ms : 0, 0);
    return lp_task_yield(L);
}

typedef struct scheduled {
    uv_timer_t timer;
    lp_gen *gen;
    void *hook; /* the generation's retire hook, NULL once it ran        */
    int fn_ref;
    int repeat;
    int stopped;
} scheduled;

static void on_scheduled_closed(uv_handle_t *h)
{
    free(h->data);
}

static void scheduled_stop(scheduled *s)
{
    if (s->stopped) return;
    s->stopped = 1;
    luaL_unref(lp_gen_state(s->gen), LUA_REGISTRYINDEX, s->fn_ref);
    uv_close((uv_handle_t *)&s->timer, on_scheduled_closed);
}

/* The generation was retired: its hook list frees the hook itself. */
static void on_retire(void *data)
{
    scheduled *s = data;
    s->hook = NULL;
    scheduled_stop(s);
}

static void on_scheduled(uv_timer_t *t)
{
    scheduled *s = t->data;
    if (s->stopped) return;
    lp_gen *g = s->gen;
    int ref = s->fn_ref;
    if (!s->repeat) {
        /* one-shot: keep the function alive for the spawn, then forget it */
        lua_State *L = lp_gen_state(g);
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
        int tmp = luaL_ref(L, LUA_REGISTRYINDEX);
        lp_gen_cancel_retire(g, s->hook);
        s->hook = NULL;
        scheduled_stop(s);
        lp_gen_spawn(g, tmp, NULL, 0);
        luaL_unref(L, LUA_REGISTRYINDEX, tmp);
        return;
    }
    lp_gen_spawn(g, ref, NULL, 0);
}

static int schedule(lua_State *L, int repeat)
{
    lua_Number ms = luaL_checknumber(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lp_gen *g = lp_gen_of(L);
    if (g == NULL || lp_gen_retired(g)) return 0;
    scheduled *s = calloc(1, sizeof(*s));
    if (s == NULL) return luaL_error(L, "out of memory");
    lua_pushvalue(L, 2);
    s->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    s->gen = g;
    s->repeat = repeat;
    uv_timer_init(lp_host_from(L)->loop, &s->timer);
    s->timer.data = s;
    uint64_t t = ms > 0 ? (uint64_t)ms : 0;
    uv_timer_start(&s->timer, on_scheduled, t, repeat ? (t ? t : 1) : 0);
    /* A reload stops the timer; a one-shot that fired cancels its hook. */
    s->hook = lp_gen_on_retire(g, on_retire, s);
    return 0;
}

static int l_after(lua_State *L)
{
    return schedule(L, 0);
}

static int l_every(lua_State *L)
{
    return schedule(L, 1);
}

static int l_monotonic(lua_State *L)
{
    lua_pushnumber(L, lp_now_ms());
    return 1;
}

int luaopen_lp_timer(lua_State *L)
{
    static const luaL_Reg fns[] = {{"sleep", l_sleep},
                                   {"after", l_after},
                                   {"every", l_every},
                                   {"monotonic_ms", l_monotonic},
                                   {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
