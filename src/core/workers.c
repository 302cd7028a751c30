/* workers — a fixed thread pool over one FIFO; see workers.h. */
#include "core/workers.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct workers {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct workers_job *head, *tail; /* FIFO, guarded by lock */
    size_t queued, max_queued;
    unsigned long long done;
    int stopping;
    size_t nthreads;
    pthread_t threads[];
};

static void *worker_main(void *arg)
{
    workers *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->wake, &w->lock);
        struct workers_job *job = w->head;
        if (!job)
            break; /* stopping, and nothing left */
        w->head = job->next;
        if (!w->head)
            w->tail = NULL;
        w->queued--;
        pthread_mutex_unlock(&w->lock);
        job->run(job); /* may free job */
        pthread_mutex_lock(&w->lock);
        w->done++;
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int workers_start(size_t nthreads, size_t max_queued, const char *name, workers **out, cb_error *err)
{
    assert(nthreads >= 1 && max_queued >= 1);
    workers *w = calloc(1, sizeof *w + nthreads * sizeof w->threads[0]);
    if (!w)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    w->max_queued = max_queued;
    for (; w->nthreads < nthreads; w->nthreads++) {
        if (pthread_create(&w->threads[w->nthreads], NULL, worker_main, w) != 0) {
            workers_stop(w);
            return cb_error_set(err, CB_EINTERNAL, NULL, "cannot start the %s threads", name);
        }
        char short_name[16];
        snprintf(short_name, sizeof short_name, "%s", name);
        pthread_setname_np(w->threads[w->nthreads], short_name);
    }
    *out = w;
    return 0;
}

int workers_submit(workers *w, struct workers_job *job)
{
    assert(job && job->run);
    pthread_mutex_lock(&w->lock);
    if (w->stopping || w->queued == w->max_queued) {
        pthread_mutex_unlock(&w->lock);
        return CB_EUNAVAILABLE;
    }
    job->next = NULL;
    if (w->tail)
        w->tail->next = job;
    else
        w->head = job;
    w->tail = job;
    w->queued++;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

unsigned long long workers_done(workers *w)
{
    if (!w)
        return 0;
    pthread_mutex_lock(&w->lock);
    unsigned long long n = w->done;
    pthread_mutex_unlock(&w->lock);
    return n;
}

void workers_stop(workers *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    assert(!w->head);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
