/* workers — a fixed pool of threads that run queued jobs, oldest first. Used
 * where the HTTP thread hands off CPU work (large ingest bodies are parsed
 * here, so that parsing, the WAL writer and the HTTP thread each use a core).
 *
 * A job is embedded in its owner's struct (no allocation here): the owner
 * keeps it alive until run has returned, and run may free it. The queue is
 * bounded; a full or stopping pool refuses a job, and the caller does the work
 * itself or answers 503. */
#ifndef CB_WORKERS_H
#define CB_WORKERS_H

#include "core/err.h"

#include <stddef.h>

struct workers_job {
    void (*run)(struct workers_job *job); /* on a worker thread */
    struct workers_job *next;             /* the pool's */
};

typedef struct workers workers;

/* Starts nthreads (>= 1) threads named name (15 bytes at most), taking at
 * most max_queued jobs waiting. *out is the caller's: workers_stop. */
int workers_start(size_t nthreads, size_t max_queued, const char *name, workers **out, cb_error *err);
/* Queues job; CB_EUNAVAILABLE (job untouched) when max_queued are waiting or
 * the pool is stopping. Thread-safe. */
int workers_submit(workers *w, struct workers_job *job);
/* Jobs run to the end so far (0 for NULL). Thread-safe. */
unsigned long long workers_done(workers *w);
/* Runs what is queued, joins the threads, frees the pool. NULL-safe. */
void workers_stop(workers *w);

#endif
