/* test_writer — the ingest writer over a real WAL in a temp dir, with stub
 * apply and checkpoint callbacks: one done per batch, after its record is on
 * disk and applied; group commit under three submitting threads; backpressure;
 * checkpoints that trim the WAL; a draining stop; a full disk (RLIMIT_FSIZE).
 *
 * Every item of batch `id` carries entity = id, so the stubs and a replay can
 * tell the batches apart. */
#include "core/log.h"
#include "ingest/writer.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_IDS 4096

/* ---- helpers ------------------------------------------------------------ */

static wal *open_wal(const char *dir, uint64_t segment_bytes)
{
    struct wal_options opt = {WAL_FSYNC_ALWAYS, segment_bytes};
    wal *w = NULL;
    cb_error err;
    int rc = wal_open(dir, &opt, &w, &err);
    if (rc != 0)
        fprintf(stderr, "  wal_open: %s\n", err.message);
    CHECK_INT(rc, 0);
    if (!w)
        exit(2);
    return w;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A batch of n readings of batch id. */
static void make_batch(batch *b, uint32_t id, int n)
{
    batch_init(b);
    for (int i = 0; i < n; i++) {
        struct batch_item it = {.entity = id, .attr = (uint16_t)i, .kind = BATCH_NUM, .ts_ms = id, .num = i};
        batch_add(b, &it);
    }
}

static int first_entity(void *arg, const struct batch_item *it)
{
    *(uint32_t *)arg = it->entity;
    return 1;
}

static uint32_t id_of_payload(const void *payload, size_t len)
{
    uint32_t id = UINT32_MAX;
    batch_decode(payload, len, first_entity, &id, NULL);
    return id;
}

/* ---- the stubs' shared record ------------------------------------------- */

struct ctx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wal *wal;
    uint64_t applied_lsn[MAX_IDS];  /* by batch id; 0 = not applied */
    uint32_t order[MAX_IDS];        /* batch ids in apply order */
    int napplied, apply_errors;
    uint64_t last_lsn;              /* of the last apply */
    int gate;                       /* apply waits while set */
    int in_apply;                   /* apply has been entered (once) */
    int sleep_ms;                   /* every apply sleeps this long */
    uint64_t ckpt_lsn[256];
    int nckpt, ckpt_wrong, ckpt_rc;
    int ndone;
    int check_wal;                  /* done replays the WAL to find the record */
};

struct sub {
    struct ctx *c;
    uint32_t id;
    int calls, rc;
    int applied_first, in_wal;
    char msg[CB_ERROR_MESSAGE_MAX];
};

static void ctx_init(struct ctx *c, wal *w)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->wal = w;
}

static void ctx_destroy(struct ctx *c)
{
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

static int stub_apply(void *arg, uint64_t lsn, const void *payload, size_t len)
{
    struct ctx *c = arg;
    uint32_t id = id_of_payload(payload, len);
    pthread_mutex_lock(&c->mu);
    c->in_apply = 1;
    pthread_cond_broadcast(&c->cv);
    while (c->gate)
        pthread_cond_wait(&c->cv, &c->mu);
    if (id >= MAX_IDS || c->applied_lsn[id] || (c->last_lsn && lsn != c->last_lsn + 1))
        c->apply_errors++;
    else
        c->applied_lsn[id] = lsn;
    c->last_lsn = lsn;
    if (c->napplied < MAX_IDS)
        c->order[c->napplied] = id;
    c->napplied++;
    int ms = c->sleep_ms;
    pthread_mutex_unlock(&c->mu);
    if (ms)
        sleep_ms(ms);
    return 0;
}

static int stub_checkpoint(void *arg, uint64_t lsn, uint64_t *trim_lsn, cb_error *err)
{
    (void)trim_lsn; /* the default, lsn, is what these tests expect */
    struct ctx *c = arg;
    pthread_mutex_lock(&c->mu);
    if (lsn != c->last_lsn)
        c->ckpt_wrong++; /* must be the last applied lsn */
    if (c->nckpt < 256)
        c->ckpt_lsn[c->nckpt] = lsn;
    c->nckpt++;
    int rc = c->ckpt_rc;
    pthread_mutex_unlock(&c->mu);
    return rc ? cb_error_set(err, rc, NULL, "stub checkpoint refused") : 0;
}

struct found {
    uint64_t lsn;
    uint32_t id;
};

static int find_first(void *arg, uint64_t lsn, const void *payload, size_t len)
{
    struct found *f = arg;
    f->lsn = lsn;
    f->id = id_of_payload(payload, len);
    return 1;
}

static void stub_done(void *arg, int rc, const cb_error *err)
{
    struct sub *s = arg;
    struct ctx *c = s->c;
    pthread_mutex_lock(&c->mu);
    uint64_t lsn = s->id < MAX_IDS ? c->applied_lsn[s->id] : 0;
    s->applied_first = lsn != 0;
    int check = c->check_wal;
    pthread_mutex_unlock(&c->mu);
    if (rc == 0 && check && lsn) {
        /* done runs on the writer thread, the WAL's one user: read the disk now */
        struct found f = {0, 0};
        s->in_wal = wal_replay(c->wal, lsn, find_first, &f, NULL, NULL) == 1 && f.lsn == lsn && f.id == s->id;
    }
    pthread_mutex_lock(&c->mu);
    s->calls++;
    s->rc = rc;
    if (rc != 0 && err)
        snprintf(s->msg, sizeof s->msg, "%s", err->message);
    c->ndone++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Waits until cond holds (checked under the lock); 0 on time-out. */
#define WAIT_FOR(c, cond, ms)                                                          \
    ({                                                                                 \
        int ok_ = 0;                                                                   \
        for (int t_ = 0; t_ < (ms) / 5 && !ok_; t_++) {                                \
            pthread_mutex_lock(&(c)->mu);                                              \
            ok_ = (cond);                                                              \
            pthread_mutex_unlock(&(c)->mu);                                            \
            if (!ok_)                                                                  \
                sleep_ms(5);                                                           \
        }                                                                              \
        ok_;                                                                           \
    })

static writer *start(struct ctx *c, uint64_t max_queued, int checkpoint_s)
{
    struct writer_options o = {c->wal, max_queued, checkpoint_s, stub_apply, stub_checkpoint, c};
    writer *w = NULL;
    cb_error err;
    CHECK_INT(writer_start(&o, &w, &err), 0);
    if (!w)
        exit(2);
    return w;
}

/* The stats of a group are added after its done calls: wait for them. */
static void stats_after(writer *w, uint64_t batches, uint64_t failed, struct writer_stats *ws)
{
    for (int t = 0; t < 2000; t++) {
        writer_get_stats(w, ws);
        if (ws->batches >= batches && ws->failed >= failed)
            return;
        sleep_ms(5);
    }
}

static void set_gate(struct ctx *c, int gate)
{
    pthread_mutex_lock(&c->mu);
    c->gate = gate;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

struct replayed {
    int count[MAX_IDS];
    uint64_t lsn[MAX_IDS];
    uint64_t next;
    int bad;
};

static int collect_replay(void *arg, uint64_t lsn, const void *payload, size_t len)
{
    struct replayed *r = arg;
    uint32_t id = id_of_payload(payload, len);
    if (id >= MAX_IDS || (r->next && lsn != r->next)) {
        r->bad++;
    } else {
        r->count[id]++;
        r->lsn[id] = lsn;
    }
    r->next = lsn + 1;
    return 0;
}

/* Reopens the log in dir and replays all of it into r. */
static void replay_dir(const char *dir, struct replayed *r)
{
    memset(r, 0, sizeof *r);
    wal *w = open_wal(dir, 0);
    cb_error err;
    struct wal_replay_stats st;
    CHECK_INT(wal_replay(w, 0, collect_replay, r, &st, &err), 0);
    CHECK_INT(st.stop, WAL_STOP_NONE);
    CHECK_INT(r->bad, 0);
    wal_close(w);
}

/* ---- tests -------------------------------------------------------------- */

TEST(test_done_once_after_wal_and_apply)
{
    enum { N = 20 };
    char dir[64];
    test_make_dir(dir);
    static struct ctx c;
    static struct sub s[N];
    ctx_init(&c, open_wal(dir, 0));
    c.check_wal = 1;
    writer *w = start(&c, 100000, 3600);
    int readings = 0;
    for (int i = 0; i < N; i++) {
        batch b;
        make_batch(&b, (uint32_t)i + 1, 1 + i % 5);
        readings += 1 + i % 5;
        s[i] = (struct sub){.c = &c, .id = (uint32_t)i + 1};
        CHECK_INT(writer_submit(w, &b, stub_done, &s[i]), 0);
        CHECK(b.data == NULL && b.count == 0); /* the writer owns it now */
        if (i % 4 == 0)
            sleep_ms(2);
    }
    CHECK(WAIT_FOR(&c, c.ndone == N, 10000));
    struct writer_stats ws;
    stats_after(w, N, 0, &ws);
    CHECK_INT(ws.batches, N);
    CHECK_INT(ws.readings, readings);
    CHECK_INT(ws.failed, 0);
    CHECK_INT(ws.queued_readings, 0);
    CHECK(ws.commits >= 1 && ws.commits <= N);
    writer_stop(w);
    writer_stop(NULL);
    CHECK_INT(c.ndone, N);
    CHECK_INT(c.napplied, N);
    CHECK_INT(c.apply_errors, 0);
    for (int i = 0; i < N; i++) {
        CHECK_INT(s[i].calls, 1);
        CHECK_INT(s[i].rc, 0);
        CHECK(s[i].applied_first); /* apply ran before done */
        CHECK(s[i].in_wal);        /* and the record was on disk */
        CHECK_INT(c.order[i], i + 1); /* one submitter: applied in submit order */
    }
    wal_close(c.wal);
    static struct replayed r;
    replay_dir(dir, &r);
    for (int i = 0; i < N; i++) {
        CHECK_INT(r.count[i + 1], 1);
        CHECK_INT(r.lsn[i + 1], c.applied_lsn[i + 1]);
    }
    CHECK_INT(r.next, N + 1);
    ctx_destroy(&c);
    test_remove_dir(dir);
}

enum { THREADS = 3, PER_THREAD = 200 };

struct submitter {
    writer *w;
    struct ctx *c;
    int index, refused, failed;
    struct sub subs[PER_THREAD];
};

static void *submit_many(void *arg)
{
    struct submitter *t = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        batch b;
        uint32_t id = (uint32_t)(t->index * 1000 + i);
        make_batch(&b, id, 1 + i % 3);
        t->subs[i] = (struct sub){.c = t->c, .id = id};
        int rc;
        while ((rc = writer_submit(t->w, &b, stub_done, &t->subs[i])) == CB_EUNAVAILABLE) {
            t->refused++;
            sleep_ms(1);
        }
        if (rc != 0) {
            t->failed++;
            batch_free(&b);
        }
    }
    return NULL;
}

TEST(test_group_commit_from_three_threads)
{
    char dir[64];
    test_make_dir(dir);
    static struct ctx c;
    static struct submitter t[THREADS];
    ctx_init(&c, open_wal(dir, 0));
    c.gate = 1; /* the first batch holds the writer while the threads queue more */
    writer *w = start(&c, 1000000, 3600);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i] = (struct submitter){.w = w, .c = &c, .index = i + 1};
        CHECK_INT(pthread_create(&th[i], NULL, submit_many, &t[i]), 0);
    }
    CHECK(WAIT_FOR(&c, c.in_apply, 5000));
    sleep_ms(20);
    set_gate(&c, 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    CHECK(WAIT_FOR(&c, c.ndone == THREADS * PER_THREAD, 20000));
    struct writer_stats ws;
    stats_after(w, THREADS * PER_THREAD, 0, &ws);
    writer_stop(w);
    CHECK_INT(ws.batches, THREADS * PER_THREAD);
    CHECK(ws.commits < ws.batches); /* grouped */
    CHECK_INT(c.apply_errors, 0);   /* lsns consecutive, each batch once */
    CHECK_INT(c.napplied, THREADS * PER_THREAD);
    int bad = 0;
    for (int i = 0; i < THREADS; i++) {
        bad += t[i].refused + t[i].failed;
        for (int k = 0; k < PER_THREAD; k++)
            bad += t[i].subs[k].calls != 1 || t[i].subs[k].rc != 0 || !t[i].subs[k].applied_first;
    }
    CHECK_INT(bad, 0);
    /* each thread's batches were applied in the order it submitted them */
    int last[THREADS + 1] = {-1, -1, -1, -1};
    for (int k = 0; k < c.napplied && k < MAX_IDS; k++) {
        int th_ = (int)c.order[k] / 1000, seq = (int)c.order[k] % 1000;
        bad += th_ < 1 || th_ > THREADS || seq <= last[th_];
        if (th_ >= 1 && th_ <= THREADS)
            last[th_] = seq;
    }
    CHECK_INT(bad, 0);
    wal_close(c.wal);
    static struct replayed r;
    replay_dir(dir, &r);
    for (int i = 1; i <= THREADS; i++)
        for (int k = 0; k < PER_THREAD; k++)
            bad += r.count[i * 1000 + k] != 1 || r.lsn[i * 1000 + k] != c.applied_lsn[i * 1000 + k];
    CHECK_INT(bad, 0);
    ctx_destroy(&c);
    test_remove_dir(dir);
}

struct waiter {
    writer *w;
    struct sub *s;
    int rc, returned; /* returned: guarded by s->c->mu */
};

static void *submit_waiting(void *arg)
{
    struct waiter *t = arg;
    batch b;
    make_batch(&b, 6, 5);
    t->rc = writer_submit_wait(t->w, &b, stub_done, t->s);
    pthread_mutex_lock(&t->s->c->mu);
    t->returned = 1;
    pthread_mutex_unlock(&t->s->c->mu);
    batch_free(&b);
    return NULL;
}

TEST(test_backpressure)
{
    char dir[64];
    test_make_dir(dir);
    static struct ctx c;
    static struct sub s[8];
    ctx_init(&c, open_wal(dir, 0));
    c.gate = 1;
    writer *w = start(&c, 10, 3600);
    batch b;
    for (int i = 0; i < 8; i++)
        s[i] = (struct sub){.c = &c, .id = (uint32_t)i + 1};
    make_batch(&b, 1, 5);
    CHECK_INT(writer_submit(w, &b, stub_done, &s[0]), 0);
    CHECK(WAIT_FOR(&c, c.in_apply, 5000)); /* batch 1 taken; the writer is stuck applying it */
    make_batch(&b, 2, 5);
    CHECK_INT(writer_submit(w, &b, stub_done, &s[1]), 0); /* queue: 5 */
    make_batch(&b, 3, 5);
    CHECK_INT(writer_submit(w, &b, stub_done, &s[2]), 0); /* queue: 10, the bound */
    make_batch(&b, 4, 1);
    unsigned char *data = b.data;
    CHECK_INT(writer_submit(w, &b, stub_done, &s[3]), CB_EUNAVAILABLE);
    CHECK(b.data == data && b.count == 1); /* still the caller's, untouched */
    struct writer_stats ws;
    writer_get_stats(w, &ws);
    CHECK_INT(ws.refused_full, 1);
    CHECK_INT(ws.queued_readings, 10);
    batch_free(&b); /* the caller frees it (valgrind: no double free, no leak) */
    /* writer_submit_wait waits for room instead: it returns once the queue drained */
    struct waiter wt = {w, &s[5], 0, 0};
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, submit_waiting, &wt), 0);
    sleep_ms(100);
    pthread_mutex_lock(&c.mu);
    CHECK_INT(wt.returned, 0); /* still waiting: the writer is stuck */
    pthread_mutex_unlock(&c.mu);
    set_gate(&c, 0);
    pthread_join(th, NULL);
    CHECK_INT(wt.rc, 0);
    CHECK(WAIT_FOR(&c, c.ndone == 4, 10000));
    CHECK_INT(s[5].calls, 1);
    CHECK_INT(s[5].rc, 0);
    /* an empty queue admits one batch even beyond the bound */
    make_batch(&b, 5, 50);
    CHECK_INT(writer_submit(w, &b, stub_done, &s[4]), 0);
    CHECK(WAIT_FOR(&c, c.ndone == 5, 10000));
    writer_stop(w);
    CHECK_INT(s[3].calls, 0); /* the refused batch never gets a done */
    CHECK_INT(s[0].calls + s[1].calls + s[2].calls + s[4].calls, 4);
    CHECK_INT(s[4].rc, 0);
    CHECK_INT(c.applied_lsn[4], 0);
    wal_close(c.wal);
    static struct replayed r;
    replay_dir(dir, &r);
    CHECK_INT(r.count[4], 0);
    CHECK_INT(r.count[1] + r.count[2] + r.count[3] + r.count[5] + r.count[6], 5);
    ctx_destroy(&c);
    test_remove_dir(dir);
}

static int count_segments(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL)
        n += strncmp(e->d_name, "wal-", 4) == 0 && strstr(e->d_name, ".log") && !strstr(e->d_name, "corrupt");
    if (d)
        closedir(d);
    return n;
}

TEST(test_checkpoint_trims_the_wal)
{
    enum { N = 60 };
    char dir[64];
    test_make_dir(dir);
    static struct ctx c;
    static struct sub s[N];
    ctx_init(&c, open_wal(dir, 1024)); /* ~2 batches per segment */
    c.ckpt_rc = CB_EIO; /* refused until the segments are counted: a slow disk may reach 1 s first */
    writer *w = start(&c, 100000, 1);
    for (int i = 0; i < N; i++) {
        batch b;
        make_batch(&b, (uint32_t)i + 1, 20); /* 465 bytes */
        s[i] = (struct sub){.c = &c, .id = (uint32_t)i + 1};
        CHECK_INT(writer_submit(w, &b, stub_done, &s[i]), 0);
        CHECK(WAIT_FOR(&c, c.ndone == i + 1, 5000)); /* one commit each: no grouping */
    }
    CHECK(count_segments(dir) > 10);
    pthread_mutex_lock(&c.mu);
    c.ckpt_rc = 0;
    pthread_mutex_unlock(&c.mu);
    struct writer_stats ws;
    for (int t = 0; t < 1000; t++) { /* the interval (1 s) passes */
        writer_get_stats(w, &ws);
        if (ws.last_checkpoint_lsn == N)
            break;
        sleep_ms(5);
    }
    CHECK(ws.checkpoints >= 1);
    CHECK_INT(ws.last_checkpoint_lsn, N);
    CHECK(ws.last_checkpoint_s >= 0);
    CHECK(count_segments(dir) <= 2); /* only segments after the checkpoint stay */
    /* a refused checkpoint keeps the WAL */
    pthread_mutex_lock(&c.mu);
    c.ckpt_rc = CB_EIO;
    int before = c.nckpt;
    pthread_mutex_unlock(&c.mu);
    for (int i = 0; i < 10; i++) {
        batch b;
        make_batch(&b, (uint32_t)(100 + i), 20);
        static struct sub s2[10];
        s2[i] = (struct sub){.c = &c, .id = (uint32_t)(100 + i)};
        CHECK_INT(writer_submit(w, &b, stub_done, &s2[i]), 0);
        CHECK(WAIT_FOR(&c, c.ndone == N + i + 1, 5000));
    }
    CHECK(WAIT_FOR(&c, c.ndone == N + 10 && c.nckpt > before, 5000));
    sleep_ms(50);
    int segs = count_segments(dir);
    CHECK(segs >= 4);
    writer_get_stats(w, &ws);
    CHECK_INT(ws.last_checkpoint_lsn, N); /* not advanced by the refused one */
    pthread_mutex_lock(&c.mu);
    c.ckpt_rc = 0;
    pthread_mutex_unlock(&c.mu);
    writer_stop(w); /* checkpoints once more on the way out */
    CHECK_INT(c.ckpt_wrong, 0);
    CHECK_INT(c.ckpt_lsn[(c.nckpt - 1) % 256], N + 10);
    CHECK(count_segments(dir) < segs);
    struct wal_stats st;
    wal_get_stats(c.wal, &st);
    CHECK(st.segments_deleted > 10);
    wal_close(c.wal);
    static struct replayed r;
    replay_dir(dir, &r);
    CHECK_INT(r.count[1], 0); /* checkpointed away */
    CHECK_INT(r.count[109], 1); /* the current segment stays */
    ctx_destroy(&c);
    test_remove_dir(dir);
}

struct stopper {
    writer *w;
};

static void *stop_thread(void *arg)
{
    writer_stop(((struct stopper *)arg)->w);
    return NULL;
}

TEST(test_stop_drains_the_queue)
{
    enum { N = 30 };
    char dir[64];
    test_make_dir(dir);
    static struct ctx c;
    static struct sub s[N + 1];
    ctx_init(&c, open_wal(dir, 0));
    c.gate = 1;
    writer *w = start(&c, 100000, 3600);
    batch b;
    for (int i = 0; i < N; i++) {
        make_batch(&b, (uint32_t)i + 1, 3);
        s[i] = (struct sub){.c = &c, .id = (uint32_t)i + 1};
        CHECK_INT(writer_submit(w, &b, stub_done, &s[i]), 0);
        if (i == 0)
            CHECK(WAIT_FOR(&c, c.in_apply, 5000)); /* 1 is being applied, 2..N wait in the queue */
    }
    struct stopper st = {w};
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, stop_thread, &st), 0);
    sleep_ms(100); /* writer_stop has set stopping and waits for the gate */
    make_batch(&b, N + 1, 1);
    s[N] = (struct sub){.c = &c, .id = N + 1};
    CHECK_INT(writer_submit(w, &b, stub_done, &s[N]), CB_EUNAVAILABLE); /* stopping: refused */
    batch_free(&b);
    set_gate(&c, 0);
    pthread_join(th, NULL);
    CHECK_INT(c.ndone, N);
    CHECK_INT(c.napplied, N);
    for (int i = 0; i < N; i++)
        CHECK(s[i].calls == 1 && s[i].rc == 0 && s[i].applied_first);
    CHECK_INT(s[N].calls, 0);
    CHECK(c.nckpt >= 1); /* the stop checkpoints */
    CHECK_INT(c.ckpt_lsn[(c.nckpt - 1) % 256], N);
    CHECK_INT(c.ckpt_wrong, 0);
    wal_close(c.wal);
    static struct replayed r;
    replay_dir(dir, &r);
    for (int i = 1; i <= N; i++)
        CHECK_INT(r.count[i], 1);
    CHECK_INT(r.count[N + 1], 0);
    ctx_destroy(&c);
    test_remove_dir(dir);
}

static long segment_size(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    long size = -1;
    char path[512];
    struct stat sb;
    while (d && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "wal-", 4) != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &sb) == 0 && sb.st_size > size)
            size = sb.st_size;
    }
    if (d)
        closedir(d);
    return size;
}

TEST(test_storage_full_fails_batches_then_recovers)
{
    char dir[64];
    test_make_dir(dir);
    static struct ctx c;
    static struct sub s[6];
    ctx_init(&c, open_wal(dir, 0));
    writer *w = start(&c, 100000, 3600);
    batch b;
    for (int i = 0; i < 6; i++)
        s[i] = (struct sub){.c = &c, .id = (uint32_t)i + 1};
    make_batch(&b, 1, 10);
    CHECK_INT(writer_submit(w, &b, stub_done, &s[0]), 0);
    CHECK(WAIT_FOR(&c, c.ndone == 1, 5000));
    long size = segment_size(dir);
    CHECK(size > 0);

    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)size + 200;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);
    make_batch(&b, 2, 40); /* ~925 bytes: does not fit */
    CHECK_INT(writer_submit(w, &b, stub_done, &s[1]), 0);
    make_batch(&b, 3, 40);
    CHECK_INT(writer_submit(w, &b, stub_done, &s[2]), 0);
    CHECK(WAIT_FOR(&c, c.ndone == 3, 5000));
    CHECK_INT(s[1].rc, CB_ESTORAGE_FULL);
    CHECK_INT(s[2].rc, CB_ESTORAGE_FULL);
    CHECK(strstr(s[1].msg, "File too large") != NULL);
    CHECK(!s[1].applied_first && !s[2].applied_first); /* never applied */
    CHECK_INT(segment_size(dir), size);                 /* nothing of them landed */
    struct writer_stats ws;
    stats_after(w, 1, 2, &ws);
    CHECK_INT(ws.failed, 2);
    CHECK_INT(ws.batches, 1);

    CHECK_INT(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    make_batch(&b, 4, 40);
    CHECK_INT(writer_submit(w, &b, stub_done, &s[3]), 0);
    make_batch(&b, 5, 3);
    CHECK_INT(writer_submit(w, &b, stub_done, &s[4]), 0);
    CHECK(WAIT_FOR(&c, c.ndone == 5, 5000));
    CHECK(s[3].rc == 0 && s[4].rc == 0 && s[3].applied_first && s[4].applied_first);
    CHECK_INT(c.applied_lsn[4], 2); /* the failed batches' lsns were handed out again */
    writer_stop(w);
    CHECK_INT(c.apply_errors, 0);
    for (int i = 0; i < 5; i++)
        CHECK_INT(s[i].calls, 1);
    wal_close(c.wal);
    static struct replayed r;
    replay_dir(dir, &r);
    CHECK_INT(r.count[1], 1);
    CHECK_INT(r.count[2], 0);
    CHECK_INT(r.count[3], 0);
    CHECK_INT(r.count[4], 1);
    CHECK_INT(r.count[5], 1);
    CHECK_INT(r.next, 4);
    ctx_destroy(&c);
    test_remove_dir(dir);
}

TEST(test_start)
{
    log_set_level(LOG_WARN); /* no checkpoint chatter */
    char dir[64];
    test_make_dir(dir);
    static struct ctx c;
    ctx_init(&c, open_wal(dir, 0));
    writer *w = start(&c, 10, 3600);
    struct writer_stats ws;
    writer_get_stats(w, &ws);
    CHECK(ws.batches == 0 && ws.commits == 0 && ws.queued_readings == 0 && ws.checkpoints == 0);
    writer_stop(w);  /* nothing applied: no checkpoint is asked for */
    CHECK_INT(c.nckpt, 0);
    wal_close(c.wal);
    ctx_destroy(&c);
    test_remove_dir(dir);
}

TEST_MAIN(test_start, test_done_once_after_wal_and_apply, test_group_commit_from_three_threads,
          test_backpressure, test_checkpoint_trims_the_wal, test_stop_drains_the_queue,
          test_storage_full_fails_batches_then_recovers)
