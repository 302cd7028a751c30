/* test_workers — the thread pool: order with one thread, every job once with
 * several, the bound on waiting jobs, and a stop that runs what is queued. */
#include "core/workers.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

struct job {
    struct workers_job w; /* first */
    int id;
    int *order;           /* appended to under order_lock */
    size_t *norder;
    pthread_mutex_t *order_lock;
    atomic_int *runs;
};

static void run_job(struct workers_job *wj)
{
    struct job *j = (struct job *)wj;
    atomic_fetch_add(j->runs, 1);
    if (j->order) {
        pthread_mutex_lock(j->order_lock);
        j->order[(*j->norder)++] = j->id;
        pthread_mutex_unlock(j->order_lock);
    }
}

TEST(test_one_thread_runs_in_order)
{
    enum { N = 200 };
    workers *w;
    cb_error err;
    CHECK_INT(workers_start(1, N, "t-order", &w, &err), 0);
    static struct job jobs[N];
    int order[N];
    size_t norder = 0;
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    atomic_int runs = 0;
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct job){.w.run = run_job, .id = i, .order = order, .norder = &norder, .order_lock = &lock,
                               .runs = &runs};
        CHECK_INT(workers_submit(w, &jobs[i].w), 0);
    }
    while (workers_done(w) < 10) /* counted as they finish */
        usleep(1000);
    workers_stop(w); /* runs what is queued */
    CHECK_INT(atomic_load(&runs), N);
    CHECK_INT(norder, N);
    for (int i = 0; i < N && i < (int)norder; i++)
        CHECK_INT(order[i], i);
}

TEST(test_many_threads_run_each_job_once)
{
    enum { N = 20000 };
    workers *w;
    cb_error err;
    CHECK_INT(workers_start(4, N, "t-many", &w, &err), 0);
    static struct job jobs[N];
    atomic_int runs = 0;
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct job){.w.run = run_job, .id = i, .runs = &runs};
        CHECK_INT(workers_submit(w, &jobs[i].w), 0);
    }
    workers_stop(w);
    CHECK_INT(atomic_load(&runs), N);
}

/* A job that holds its worker until released. */
struct gate {
    struct workers_job w;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int entered, open;
};

static void run_gate(struct workers_job *wj)
{
    struct gate *g = (struct gate *)wj;
    pthread_mutex_lock(&g->lock);
    g->entered = 1;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

TEST(test_full_queue_refuses)
{
    workers *w;
    cb_error err;
    CHECK_INT(workers_start(1, 3, "t-full", &w, &err), 0);
    struct gate g = {.w.run = run_gate, .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    CHECK_INT(workers_submit(w, &g.w), 0);
    pthread_mutex_lock(&g.lock);
    while (!g.entered) /* the worker is busy: what follows waits */
        pthread_cond_wait(&g.cond, &g.lock);
    pthread_mutex_unlock(&g.lock);
    struct job jobs[4];
    atomic_int runs = 0;
    for (int i = 0; i < 4; i++)
        jobs[i] = (struct job){.w.run = run_job, .id = i, .runs = &runs};
    for (int i = 0; i < 3; i++)
        CHECK_INT(workers_submit(w, &jobs[i].w), 0);
    CHECK_INT(workers_submit(w, &jobs[3].w), CB_EUNAVAILABLE); /* three are waiting */
    pthread_mutex_lock(&g.lock);
    g.open = 1;
    pthread_cond_broadcast(&g.cond);
    pthread_mutex_unlock(&g.lock);
    workers_stop(w);
    CHECK_INT(atomic_load(&runs), 3);
}

TEST_MAIN(test_one_thread_runs_in_order, test_many_threads_run_each_job_once, test_full_queue_refuses)
