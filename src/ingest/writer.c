/* writer — queue, group commit, apply, acknowledge, checkpoint; see writer.h. */
#include "ingest/writer.h"

#include "core/clock.h"
#include "core/log.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct job {
    batch b;
    writer_done_fn done;
    void *arg;
    uint64_t lsn;
    struct job *next;
};

struct writer {
    struct writer_options opt;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t room;     /* the queue was emptied: for writer_submit_wait */
    unsigned waiting;        /* submitters waiting for room; guarded by lock */
    struct job *head, *tail; /* guarded by lock */
    uint64_t queued;         /* readings in the queue; guarded by lock */
    int stopping;            /* guarded by lock */
    struct writer_stats stats; /* guarded by lock */
    int64_t next_checkpoint_ms;
    uint64_t last_lsn;       /* writer thread only */
};

/* Queues b if the queue has room; with wait_for_room, waits for room unless
 * the writer is stopping. */
static int enqueue(writer *w, batch *b, writer_done_fn done, void *arg, int wait_for_room)
{
    assert(b->count > 0 && !b->failed);
    struct job *j = malloc(sizeof *j);
    if (!j)
        return CB_ENOMEM;
    pthread_mutex_lock(&w->lock);
    /* An empty queue always admits one batch, so a batch larger than the bound
     * still goes through (the body size limit bounds it). */
    while (wait_for_room && !w->stopping && w->head && w->queued + b->count > w->opt.max_queued) {
        w->waiting++;
        pthread_cond_wait(&w->room, &w->lock);
        w->waiting--;
    }
    if (w->stopping || (w->head && w->queued + b->count > w->opt.max_queued)) {
        w->stats.refused_full++;
        pthread_mutex_unlock(&w->lock);
        free(j);
        return CB_EUNAVAILABLE;
    }
    j->b = *b;
    j->done = done;
    j->arg = arg;
    j->next = NULL;
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    w->queued += b->count;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    batch_init(b); /* the writer owns the data now */
    return 0;
}

int writer_submit(writer *w, batch *b, writer_done_fn done, void *arg)
{
    return enqueue(w, b, done, arg, 0);
}

int writer_submit_wait(writer *w, batch *b, writer_done_fn done, void *arg)
{
    return enqueue(w, b, done, arg, 1);
}

/* Takes every queued job; waits up to 200 ms for one. NULL on timeout. */
static struct job *take_all(writer *w, int *stopping)
{
    pthread_mutex_lock(&w->lock);
    if (!w->head && !w->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->wake, &w->lock, &ts);
    }
    struct job *jobs = w->head;
    w->head = w->tail = NULL;
    w->queued = 0;
    if (w->waiting)
        pthread_cond_broadcast(&w->room);
    *stopping = w->stopping;
    pthread_mutex_unlock(&w->lock);
    return jobs;
}

static int commit_jobs(writer *w, struct job *jobs, cb_error *err)
{
    for (struct job *j = jobs; j; j = j->next) {
        int rc = wal_append(w->opt.wal, j->b.data, j->b.len, &j->lsn, err);
        if (rc != 0) {
            wal_rollback(w->opt.wal); /* the group fails whole: nothing of it may land later */
            return rc;
        }
    }
    return wal_commit(w->opt.wal, err);
}

/* Applies the committed jobs, counts them, then tells each submitter — in
 * that order, so a client that has its answer also sees it in /metrics. */
static void finish_jobs(writer *w, struct job *jobs, int rc, const cb_error *err)
{
    uint64_t batches = 0, readings = 0;
    for (struct job *j = jobs; j; j = j->next) {
        if (rc == 0) {
            w->opt.apply(w->opt.ctx, j->lsn, j->b.data, j->b.len);
            w->last_lsn = j->lsn;
        }
        batches++;
        readings += j->b.count;
    }
    pthread_mutex_lock(&w->lock);
    if (rc == 0) {
        w->stats.batches += batches;
        w->stats.readings += readings;
        w->stats.commits++;
    } else {
        w->stats.failed += batches;
    }
    pthread_mutex_unlock(&w->lock);
    while (jobs) {
        struct job *next = jobs->next;
        jobs->done(jobs->arg, rc, err);
        batch_free(&jobs->b);
        free(jobs);
        jobs = next;
    }
}

static void checkpoint(writer *w)
{
    if (w->last_lsn == 0)
        return;
    cb_error err;
    double t0 = clock_mono_s();
    uint64_t trim = w->last_lsn;
    int rc = w->opt.checkpoint(w->opt.ctx, w->last_lsn, &trim, &err);
    if (rc == 0)
        rc = wal_checkpoint(w->opt.wal, trim, &err);
    double took = clock_mono_s() - t0;
    if (rc != 0) {
        log_event(LOG_ERROR, "checkpoint", "error=%s msg=\"%s\"", cb_err_name(rc), err.message);
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->stats.checkpoints++;
    w->stats.last_checkpoint_lsn = w->last_lsn;
    w->stats.last_checkpoint_s = took;
    pthread_mutex_unlock(&w->lock);
    log_event(LOG_INFO, "checkpoint", "lsn=%llu took_ms=%.1f", (unsigned long long)w->last_lsn,
              took * 1000);
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    for (;;) {
        int stopping;
        struct job *jobs = take_all(w, &stopping);
        if (jobs) {
            cb_error err;
            cb_error_clear(&err);
            int rc = commit_jobs(w, jobs, &err);
            if (rc != 0)
                log_event(LOG_ERROR, "wal", "error=%s msg=\"%s\"", cb_err_name(rc), err.message);
            finish_jobs(w, jobs, rc, &err);
        }
        int64_t now = clock_mono_ms();
        cb_error err;
        if (wal_sync_if_due(w->opt.wal, now, &err) != 0)
            log_event(LOG_ERROR, "wal", "error=sync msg=\"%s\"", err.message);
        if (now >= w->next_checkpoint_ms) {
            checkpoint(w);
            w->next_checkpoint_ms = now + (int64_t)w->opt.checkpoint_interval_s * 1000;
        }
        if (stopping && !jobs)
            break;
    }
    checkpoint(w);
    return NULL;
}

int writer_start(const struct writer_options *opt, writer **out, cb_error *err)
{
    writer *w = calloc(1, sizeof *w);
    if (!w)
        return cb_error_set(err, CB_ENOMEM, NULL, NULL);
    w->opt = *opt;
    w->last_lsn = wal_next_lsn(opt->wal) - 1;
    w->next_checkpoint_ms = clock_mono_ms() + (int64_t)opt->checkpoint_interval_s * 1000;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->room, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_cond_destroy(&w->wake);
        pthread_cond_destroy(&w->room);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return cb_error_set(err, CB_EINTERNAL, NULL, "cannot start the writer thread");
    }
    *out = w;
    return 0;
}

void writer_stop(writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_cond_broadcast(&w->room);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    assert(!w->head);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->room);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void writer_get_stats(writer *w, struct writer_stats *out)
{
    pthread_mutex_lock(&w->lock);
    *out = w->stats;
    out->queued_readings = w->queued;
    pthread_mutex_unlock(&w->lock);
}
