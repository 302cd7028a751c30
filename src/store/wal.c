/* wal — segment files, group commit and crash recovery; see wal.h.
 *
 * The writer keeps one open segment (the last one) and a memory buffer of
 * encoded records; wal_commit writes the buffer at the segment's known good
 * size with one pwrite, so a failed or partial write can be cut off again
 * with ftruncate and the file never holds a torn record between good ones.
 * Recovery (in wal_open) reads every segment with a small buffered reader and
 * ends the log at the first record that fails a check. */
#include "store/wal.h"

#include "core/crc32c.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAL_HEADER 16                /* u32 length, u32 crc, u64 lsn */
#define WAL_READ_CHUNK (256u << 10)  /* reader buffer; grows for larger records */
#define WAL_BUF_KEEP (4u << 20)      /* commit buffers above this are freed after use */
#define WAL_SYNC_INTERVAL_MS 1000
#define WAL_CORRUPT_TRIES 1000       /* name.corrupt, name.1.corrupt, ... */
#define WAL_ASIDE_NAME_MAX 96        /* a segment name + ".cut-<offset>.<n>.corrupt" */

struct wal {
    int dfd;                       /* the directory: openat, renameat, fsync */
    int fd;                        /* the current (last) segment, write-only */
    enum wal_fsync fsync;
    uint64_t segment_bytes;
    uint64_t *seg_first;           /* first lsn of each segment, ascending; owned */
    size_t nseg, seg_cap;
    uint64_t seg_size;             /* bytes of good records in the current segment */
    uint64_t next_lsn;             /* lsn the next append gets */
    uint64_t commit_lsn;           /* lsn of the first buffered record */
    unsigned char *buf;            /* encoded records awaiting commit; owned */
    size_t len, cap;
    int dirty;                     /* written since the last fdatasync */
    int need_cut;                  /* a failed write may have left bytes past seg_size */
    int64_t last_sync_ms;          /* INT64_MIN: never synced by wal_sync_if_due */
    struct wal_replay_stats found; /* what recovery found, reported by wal_replay */
    struct wal_stats stats;
    /* the reaper: deletes the segments wal_checkpoint renamed to *.drop */
    pthread_t reaper;
    pthread_mutex_t reap_lock;
    pthread_cond_t reap_wake;
    int reaper_running, reap_pending, reap_stop; /* guarded by reap_lock */
};

/* Buffered sequential reader over one segment. buf[pos, end) holds the file's
 * bytes from offset off on; nothing at or past limit is read. */
struct reader {
    int fd;
    uint64_t limit, off;
    unsigned char *buf;
    size_t cap, pos, end;
};

/* What a replay does with each good record; NULL fn during recovery. */
struct visit {
    int (*fn)(void *arg, uint64_t lsn, const void *payload, size_t len);
    void *arg;
    uint64_t from_lsn;
    struct wal_replay_stats *st;
};

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const unsigned char *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static uint32_t record_crc(uint64_t lsn, const void *payload, size_t len)
{
    unsigned char l[8];
    put_le64(l, lsn);
    return crc32c(crc32c(0, l, sizeof l), payload, len);
}

static void seg_name(char out[WAL_SEGMENT_NAME_MAX], uint64_t first)
{
    snprintf(out, WAL_SEGMENT_NAME_MAX, "wal-%016" PRIx64 ".log", first);
}

/* Exactly "wal-" + 16 lowercase hex digits + ".log", lsn >= 1: anything else
 * (*.corrupt, editor backups) is not a segment. */
static int seg_parse(const char *name, uint64_t *first)
{
    if (strlen(name) != 24 || strncmp(name, "wal-", 4) != 0 || strcmp(name + 20, ".log") != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 4; i < 20; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    *first = v;
    return v != 0;
}

static int sys_error(cb_error *err, int e, const char *what, const char *name)
{
    int code = e == ENOSPC || e == EDQUOT || e == EFBIG ? CB_ESTORAGE_FULL
               : e == ENOMEM                             ? CB_ENOMEM
                                                         : CB_EIO;
    return cb_error_set(err, code, NULL, "wal: %s %s: %s", what, name, strerror(e));
}

static int sync_fd(int fd)
{
    int rc;
    do
        rc = fdatasync(fd);
    while (rc < 0 && errno == EINTR);
    return rc;
}

const char *wal_stop_name(enum wal_stop stop)
{
    static const char *const names[] = {
        [WAL_STOP_NONE] = "none",
        [WAL_STOP_SHORT_HEADER] = "short_header",
        [WAL_STOP_SHORT_PAYLOAD] = "short_payload",
        [WAL_STOP_BAD_LENGTH] = "bad_length",
        [WAL_STOP_BAD_CRC] = "bad_crc",
        [WAL_STOP_BAD_LSN] = "bad_lsn",
    };
    return (unsigned)stop < sizeof names / sizeof names[0] ? names[stop] : "unknown";
}

/* ---- reading ---------------------------------------------------------- */

/* Makes `need` bytes available at buf + pos unless the file or the limit
 * ends first; *avail gets what is there (at most need is promised). */
static int reader_fill(struct reader *r, size_t need, size_t *avail, cb_error *err)
{
    if (r->end - r->pos < need) {
        memmove(r->buf, r->buf + r->pos, r->end - r->pos);
        r->end -= r->pos;
        r->pos = 0;
        if (need > r->cap) {
            unsigned char *nb = realloc(r->buf, need);
            if (!nb)
                return cb_error_set(err, CB_ENOMEM, NULL, "wal: no memory for a %zu-byte record", need);
            r->buf = nb;
            r->cap = need;
        }
    }
    while (r->end - r->pos < need) {
        uint64_t at = r->off + (r->end - r->pos);
        size_t room = r->cap - r->end;
        if (at >= r->limit)
            break;
        if (room > r->limit - at)
            room = (size_t)(r->limit - at);
        ssize_t n = pread(r->fd, r->buf + r->end, room, (off_t)at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return sys_error(err, errno, "read", "segment");
        if (n == 0)
            break;
        r->end += (size_t)n;
    }
    *avail = r->end - r->pos;
    return 0;
}

/* Reads the record at the reader's position. Returns 1 with *payload, *len
 * and *lsn set and the reader moved past it; 0 when there is no good record
 * (*stop says why, WAL_STOP_NONE at a clean end; the reader stays at the bad
 * record); or a negative code. */
static int reader_next(struct reader *r, uint64_t expect_lsn, const unsigned char **payload,
                       uint32_t *len, enum wal_stop *stop, cb_error *err)
{
    size_t avail;
    int rc = reader_fill(r, WAL_HEADER, &avail, err);
    if (rc < 0)
        return rc;
    *stop = avail == 0 ? WAL_STOP_NONE : WAL_STOP_SHORT_HEADER;
    if (avail < WAL_HEADER)
        return 0;
    *len = get_le32(r->buf + r->pos);
    if (*len > WAL_MAX_PAYLOAD) {
        *stop = WAL_STOP_BAD_LENGTH;
        return 0;
    }
    if ((rc = reader_fill(r, WAL_HEADER + (size_t)*len, &avail, err)) < 0)
        return rc;
    *stop = WAL_STOP_SHORT_PAYLOAD;
    if (avail < WAL_HEADER + (size_t)*len)
        return 0;
    const unsigned char *h = r->buf + r->pos;
    uint64_t lsn = get_le64(h + 8);
    *stop = record_crc(lsn, h + WAL_HEADER, *len) != get_le32(h + 4) ? WAL_STOP_BAD_CRC
            : lsn != expect_lsn                                       ? WAL_STOP_BAD_LSN
                                                                      : WAL_STOP_NONE;
    if (*stop != WAL_STOP_NONE)
        return 0;
    *payload = h + WAL_HEADER;
    r->pos += WAL_HEADER + *len;
    r->off += WAL_HEADER + *len;
    return 1;
}

static int visit_record(const struct visit *v, uint64_t lsn, const void *payload, size_t len)
{
    if (!v || lsn < v->from_lsn)
        return 0;
    int rc = v->fn(v->arg, lsn, payload, len);
    if (rc != 0)
        return rc;
    if (v->st) {
        if (v->st->records++ == 0)
            v->st->first_lsn = lsn;
        v->st->last_lsn = lsn;
    }
    return 0;
}

/* Reads segment i from its start, expecting lsn *lsn first; on return *lsn is
 * the lsn after the last good record, r->off the offset after it and *stop
 * why reading ended. Returns 0, a negative code, or fn's non-zero result. */
static int read_segment(wal *w, size_t i, struct reader *r, uint64_t *lsn, enum wal_stop *stop,
                        const struct visit *v, cb_error *err)
{
    char name[WAL_SEGMENT_NAME_MAX];
    seg_name(name, w->seg_first[i]);
    r->fd = openat(w->dfd, name, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return sys_error(err, errno, "open", name);
    r->limit = w->fd >= 0 && i == w->nseg - 1 ? w->seg_size : UINT64_MAX;
    r->off = r->pos = r->end = 0;
    int rc;
    for (;;) {
        const unsigned char *payload;
        uint32_t len;
        rc = reader_next(r, *lsn, &payload, &len, stop, err);
        if (rc <= 0)
            break;
        if ((rc = visit_record(v, *lsn, payload, len)) != 0)
            break;
        (*lsn)++;
    }
    close(r->fd);
    r->fd = -1;
    return rc;
}

/* ---- recovery --------------------------------------------------------- */

static int grow_segments(wal *w)
{
    if (w->nseg < w->seg_cap)
        return 0;
    size_t cap = w->seg_cap ? w->seg_cap * 2 : 16;
    uint64_t *n = realloc(w->seg_first, cap * sizeof *n);
    if (!n)
        return CB_ENOMEM;
    w->seg_first = n;
    w->seg_cap = cap;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void reap_drops(int dfd);

/* A listing of the directory dfd from its start (NULL with errno set). */
static DIR *open_listing(int dfd)
{
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        errno = e;
        return NULL;
    }
    rewinddir(d); /* a dup shares the directory's offset with every other */
    return d;
}

static int list_segments(wal *w, const char *dir, cb_error *err)
{
    DIR *d = open_listing(w->dfd);
    if (!d)
        return sys_error(err, errno, "list", dir);
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t first;
        if (!seg_parse(e->d_name, &first))
            continue;
        if (grow_segments(w) < 0) {
            rc = cb_error_set(err, CB_ENOMEM, NULL, "wal: no memory to list %s", dir);
            break;
        }
        w->seg_first[w->nseg++] = first;
    }
    closedir(d);
    if (rc == 0 && w->nseg > 1)
        qsort(w->seg_first, w->nseg, sizeof *w->seg_first, cmp_u64);
    return rc;
}

/* Finds a name `<base>.corrupt`, `<base>.1.corrupt`, ... that does not exist. */
static int corrupt_name(wal *w, const char *base, char out[WAL_ASIDE_NAME_MAX], cb_error *err)
{
    for (int n = 0; n < WAL_CORRUPT_TRIES; n++) {
        if (n == 0)
            snprintf(out, WAL_ASIDE_NAME_MAX, "%s.corrupt", base);
        else
            snprintf(out, WAL_ASIDE_NAME_MAX, "%s.%d.corrupt", base, n);
        if (faccessat(w->dfd, out, F_OK, 0) != 0 && errno == ENOENT)
            return 0;
    }
    return cb_error_set(err, CB_EIO, NULL, "wal: too many %s.*.corrupt files", base);
}

/* Renames segments from..nseg-1 aside; they are after the end of the log. */
static int set_aside(wal *w, size_t from, cb_error *err)
{
    while (w->nseg > from) {
        char name[WAL_SEGMENT_NAME_MAX], aside[WAL_ASIDE_NAME_MAX];
        seg_name(name, w->seg_first[w->nseg - 1]);
        int rc = corrupt_name(w, name, aside, err);
        if (rc < 0)
            return rc;
        if (renameat(w->dfd, name, w->dfd, aside) != 0)
            return sys_error(err, errno, "rename aside", name);
        w->nseg--;
        w->found.set_aside++;
    }
    return 0;
}

/* Copies bytes [off, size) of fd, segment name, to a new `<name>.cut-<off>.corrupt`. */
static int save_cut(wal *w, int fd, const char *name, uint64_t off, uint64_t size, cb_error *err)
{
    char base[WAL_ASIDE_NAME_MAX], copy[WAL_ASIDE_NAME_MAX];
    snprintf(base, sizeof base, "%.*s.cut-%" PRIu64, WAL_SEGMENT_NAME_MAX, name, off);
    int rc = corrupt_name(w, base, copy, err);
    if (rc < 0)
        return rc;
    unsigned char *buf = NULL;
    int out = openat(w->dfd, copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        rc = sys_error(err, errno, "create", copy);
        goto out;
    }
    if (!(buf = malloc(WAL_READ_CHUNK))) {
        rc = cb_error_set(err, CB_ENOMEM, NULL, "wal: no memory to copy %s", name);
        goto out;
    }
    while (off < size && rc == 0) {
        size_t want = size - off < WAL_READ_CHUNK ? (size_t)(size - off) : WAL_READ_CHUNK;
        ssize_t n = pread(fd, buf, want, (off_t)off), m = n > 0 ? write(out, buf, (size_t)n) : 0;
        if (n <= 0)
            rc = sys_error(err, n < 0 ? errno : EIO, "read", name);
        else if (m != n)
            rc = sys_error(err, m < 0 ? errno : ENOSPC, "write", copy);
        off += rc == 0 ? (uint64_t)n : 0;
    }
    if (rc == 0 && w->fsync != WAL_FSYNC_OFF && sync_fd(out) != 0)
        rc = sys_error(err, errno, "sync", copy);
out:
    if (out >= 0)
        close(out);
    free(buf);
    return rc;
}

/* Ends segment i at off; with keep, the bytes cut go to a .corrupt copy first. */
static int cut_segment(wal *w, size_t i, uint64_t off, int keep, cb_error *err)
{
    char name[WAL_SEGMENT_NAME_MAX];
    seg_name(name, w->seg_first[i]);
    struct stat sb;
    int rc = 0, fd = openat(w->dfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        rc = sys_error(err, errno, "open", name);
        goto out;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (keep && size > off && (rc = save_cut(w, fd, name, off, size, err)) < 0)
        goto out;
    if (ftruncate(fd, (off_t)off) != 0) {
        rc = sys_error(err, errno, "truncate", name);
        goto out;
    }
    if (w->fsync != WAL_FSYNC_OFF && sync_fd(fd) != 0) {
        rc = sys_error(err, errno, "sync", name);
        goto out;
    }
    w->found.cut_bytes = size > off ? size - off : 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

static void note_stop(wal *w, size_t i, uint64_t off, enum wal_stop why)
{
    w->found.stop = why;
    seg_name(w->found.stop_segment, w->seg_first[i]);
    w->found.stop_offset = off;
}

/* Ends the log at the first bad record: cuts its segment, sets later ones
 * aside. A segment whose name is not the next lsn means one is missing, so
 * it and those after it are set aside whole. An unfinished write can only
 * leave a short record at the end of the last segment; those bytes are cut
 * without a copy, anything else is kept. (A flipped bit in the length of one
 * of the last records looks like an unfinished write too.) */
static int end_log_at(wal *w, size_t i, uint64_t off, enum wal_stop why, int whole, cb_error *err)
{
    int unfinished = (why == WAL_STOP_SHORT_HEADER || why == WAL_STOP_SHORT_PAYLOAD) &&
                     i == w->nseg - 1;
    note_stop(w, i, off, why);
    int rc = set_aside(w, whole ? i : i + 1, err);
    if (rc == 0 && !whole)
        rc = cut_segment(w, i, off, !unfinished, err);
    if (rc == 0 && w->fsync != WAL_FSYNC_OFF && fsync(w->dfd) != 0)
        rc = sys_error(err, errno, "sync", "directory");
    return rc;
}

/* Checks every record of every segment; sets next_lsn and seg_size. */
static int recover(wal *w, cb_error *err)
{
    w->next_lsn = 1;
    if (w->nseg == 0)
        return 0;
    struct reader r = {.fd = -1, .cap = WAL_READ_CHUNK, .buf = malloc(WAL_READ_CHUNK)};
    if (!r.buf)
        return cb_error_set(err, CB_ENOMEM, NULL, "wal: no memory to read segments");
    uint64_t lsn = w->seg_first[0], end = 0;
    enum wal_stop stop = WAL_STOP_NONE;
    int rc = 0;
    for (size_t i = 0; i < w->nseg; i++) {
        if (w->seg_first[i] != lsn) {
            rc = end_log_at(w, i, 0, WAL_STOP_BAD_LSN, 1, err);
            break;
        }
        if ((rc = read_segment(w, i, &r, &lsn, &stop, NULL, err)) < 0)
            break;
        end = r.off;
        if (stop != WAL_STOP_NONE) {
            rc = end_log_at(w, i, end, stop, 0, err);
            break;
        }
    }
    free(r.buf);
    w->next_lsn = lsn;
    w->seg_size = end;
    assert(rc != 0 || w->nseg > 0);
    return rc;
}

/* ---- writing ---------------------------------------------------------- */

/* Creates the segment whose first record will be lsn first, and makes it
 * current. The directory is synced so the new name survives a crash. */
static int new_segment(wal *w, uint64_t first, cb_error *err)
{
    char name[WAL_SEGMENT_NAME_MAX];
    seg_name(name, first);
    if (grow_segments(w) < 0)
        return cb_error_set(err, CB_ENOMEM, NULL, "wal: no memory for segment %s", name);
    int fd = openat(w->dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return sys_error(err, errno, "create", name);
    if (w->fsync != WAL_FSYNC_OFF && fsync(w->dfd) != 0) {
        int rc = sys_error(err, errno, "sync directory for", name);
        close(fd);
        unlinkat(w->dfd, name, 0);
        return rc;
    }
    if (w->fd >= 0)
        close(w->fd);
    w->fd = fd;
    w->seg_first[w->nseg++] = first;
    w->seg_size = 0;
    w->dirty = 0;
    return 0;
}

static int open_current(wal *w, cb_error *err)
{
    if (w->nseg == 0)
        return new_segment(w, w->next_lsn, err);
    char name[WAL_SEGMENT_NAME_MAX];
    seg_name(name, w->seg_first[w->nseg - 1]);
    w->fd = openat(w->dfd, name, O_WRONLY | O_CLOEXEC);
    return w->fd < 0 ? sys_error(err, errno, "open", name) : 0;
}

static int sync_segment(wal *w, cb_error *err)
{
    w->stats.fsyncs++;
    if (sync_fd(w->fd) != 0) {
        char name[WAL_SEGMENT_NAME_MAX];
        seg_name(name, w->seg_first[w->nseg - 1]);
        return sys_error(err, errno, "sync", name);
    }
    w->dirty = 0;
    return 0;
}

/* Syncs the full segment (it will not be synced again) and starts the next. */
static int rotate(wal *w, cb_error *err)
{
    int rc = 0;
    if (w->dirty && w->fsync != WAL_FSYNC_OFF)
        rc = sync_segment(w, err);
    return rc < 0 ? rc : new_segment(w, w->commit_lsn, err);
}

/* Cuts the current segment back to its last good record, after a failed
 * write; if even that fails, the next commit tries again first. */
static int cut_back(wal *w, cb_error *err)
{
    int failed = ftruncate(w->fd, (off_t)w->seg_size) != 0;
    w->need_cut = failed;
    return failed ? sys_error(err, errno, "truncate", "current segment") : 0;
}

static int write_buffer(wal *w, cb_error *err)
{
    size_t done = 0;
    while (done < w->len) {
        ssize_t n = pwrite(w->fd, w->buf + done, w->len - done, (off_t)(w->seg_size + done));
        w->stats.writes++;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            char name[WAL_SEGMENT_NAME_MAX];
            seg_name(name, w->seg_first[w->nseg - 1]);
            return sys_error(err, n < 0 ? errno : EIO, "write", name);
        }
        done += (size_t)n;
    }
    return 0;
}

/* Writes and, under ALWAYS, syncs the buffer at the end of the current
 * segment; on failure cuts the segment back so no torn record remains. */
static int write_batch(wal *w, cb_error *err)
{
    int rc = write_buffer(w, err);
    if (rc == 0 && w->fsync == WAL_FSYNC_ALWAYS)
        rc = sync_segment(w, err);
    else if (rc == 0)
        w->dirty = 1;
    if (rc < 0)
        cut_back(w, NULL); /* keep the write's error; need_cut records a failure */
    return rc;
}

static void drop_buffer(wal *w)
{
    w->next_lsn = w->commit_lsn;
    w->len = 0;
    if (w->cap > WAL_BUF_KEEP) {
        free(w->buf);
        w->buf = NULL;
        w->cap = 0;
    }
}

int wal_commit(wal *w, cb_error *err)
{
    if (w->len == 0)
        return 0;
    int rc = w->need_cut ? cut_back(w, err) : 0;
    if (rc == 0 && w->seg_size > 0 && w->seg_size + w->len > w->segment_bytes)
        rc = rotate(w, err);
    if (rc == 0)
        rc = write_batch(w, err);
    if (rc < 0) {
        w->stats.write_errors++;
        drop_buffer(w);
        return rc;
    }
    w->seg_size += w->len;
    w->stats.commits++;
    w->stats.bytes_written += w->len;
    w->stats.records_written += w->next_lsn - w->commit_lsn;
    w->commit_lsn = w->next_lsn;
    drop_buffer(w);
    return 0;
}

void wal_rollback(wal *w)
{
    drop_buffer(w);
}

int wal_append(wal *w, const void *payload, size_t len, uint64_t *lsn_out, cb_error *err)
{
    assert(payload || len == 0);
    if (len > WAL_MAX_PAYLOAD)
        return cb_error_set(err, CB_EINVALID_FIELD, "payload",
                            "wal: a record of %zu bytes is over the %u-byte limit", len,
                            WAL_MAX_PAYLOAD);
    size_t need = WAL_HEADER + len;
    if (w->cap - w->len < need) {
        size_t cap = w->cap ? w->cap : 64u << 10;
        while (cap - w->len < need && cap <= SIZE_MAX / 2)
            cap *= 2;
        unsigned char *nb = cap - w->len >= need ? realloc(w->buf, cap) : NULL;
        if (!nb)
            return cb_error_set(err, CB_ENOMEM, NULL, "wal: no memory to buffer a record");
        w->buf = nb;
        w->cap = cap;
    }
    unsigned char *p = w->buf + w->len;
    put_le32(p, (uint32_t)len);
    put_le32(p + 4, record_crc(w->next_lsn, payload, len));
    put_le64(p + 8, w->next_lsn);
    if (len)
        memcpy(p + WAL_HEADER, payload, len);
    w->len += need;
    if (lsn_out)
        *lsn_out = w->next_lsn;
    w->next_lsn++;
    return 0;
}

int wal_sync_if_due(wal *w, int64_t now_ms, cb_error *err)
{
    if (w->fsync != WAL_FSYNC_EVERYSEC || !w->dirty)
        return 0;
    if (w->last_sync_ms != INT64_MIN && now_ms - w->last_sync_ms < WAL_SYNC_INTERVAL_MS)
        return 0;
    int rc = sync_segment(w, err);
    if (rc == 0)
        w->last_sync_ms = now_ms;
    return rc;
}

/* ---- the rest of the API ---------------------------------------------- */

static int open_dir(wal *w, const char *dir, cb_error *err)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return sys_error(err, errno, "create directory", dir);
    w->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return w->dfd < 0 ? sys_error(err, errno, "open directory", dir) : 0;
}

static int check_options(const struct wal_options *opt, cb_error *err)
{
    if (opt->fsync != WAL_FSYNC_ALWAYS && opt->fsync != WAL_FSYNC_EVERYSEC &&
        opt->fsync != WAL_FSYNC_OFF)
        return cb_error_set(err, CB_ECONFIG, "wal.fsync", "wal: unknown fsync policy %d",
                            (int)opt->fsync);
    return 0;
}

int wal_open(const char *dir, const struct wal_options *opt, wal **out, cb_error *err)
{
    static const struct wal_options defaults = {WAL_FSYNC_EVERYSEC, WAL_DEFAULT_SEGMENT_BYTES};
    *out = NULL;
    if (!opt)
        opt = &defaults;
    int rc = check_options(opt, err);
    if (rc < 0)
        return rc;
    wal *w = calloc(1, sizeof *w);
    if (!w)
        return cb_error_set(err, CB_ENOMEM, NULL, "wal: out of memory");
    w->dfd = w->fd = -1;
    pthread_mutex_init(&w->reap_lock, NULL);
    pthread_cond_init(&w->reap_wake, NULL);
    w->fsync = opt->fsync;
    w->segment_bytes = opt->segment_bytes ? opt->segment_bytes : WAL_DEFAULT_SEGMENT_BYTES;
    w->last_sync_ms = INT64_MIN;
    if ((rc = open_dir(w, dir, err)) == 0)
        reap_drops(w->dfd); /* segments a crash left dropped but not deleted */
    if (rc < 0 || (rc = list_segments(w, dir, err)) < 0 ||
        (rc = recover(w, err)) < 0 || (rc = open_current(w, err)) < 0)
        goto out;
    w->commit_lsn = w->next_lsn;
    *out = w;
out:
    if (rc < 0)
        wal_close(w);
    return rc;
}

/* The segment holding from_lsn: the last one starting at or before it. */
static size_t segment_of(const wal *w, uint64_t lsn)
{
    size_t i = w->nseg - 1;
    while (i > 0 && w->seg_first[i] > lsn)
        i--;
    return i;
}

static int replay_segments(wal *w, size_t i, const struct visit *v, cb_error *err)
{
    struct reader r = {.fd = -1, .cap = WAL_READ_CHUNK, .buf = malloc(WAL_READ_CHUNK)};
    if (!r.buf)
        return cb_error_set(err, CB_ENOMEM, NULL, "wal: no memory to read segments");
    uint64_t lsn = w->seg_first[i];
    int rc = 0;
    for (; i < w->nseg && rc == 0; i++) {
        enum wal_stop stop = WAL_STOP_NONE;
        if (w->seg_first[i] != lsn)
            stop = WAL_STOP_BAD_LSN;
        else if ((rc = read_segment(w, i, &r, &lsn, &stop, v, err)) != 0)
            break;
        if (stop == WAL_STOP_NONE)
            continue;
        if (v->st) {
            v->st->stop = stop;
            seg_name(v->st->stop_segment, w->seg_first[i]);
            v->st->stop_offset = r.off;
        }
        rc = cb_error_set(err, CB_ECORRUPT, NULL,
                          "wal: %s in segment %016" PRIx64 " at byte %" PRIu64
                          ", which was intact when the log was opened",
                          wal_stop_name(stop), w->seg_first[i], r.off);
    }
    free(r.buf);
    return rc;
}

int wal_replay(wal *w, uint64_t from_lsn,
               int (*fn)(void *arg, uint64_t lsn, const void *payload, size_t len), void *arg,
               struct wal_replay_stats *st, cb_error *err)
{
    assert(w->nseg > 0);
    if (st)
        *st = w->found;
    uint64_t oldest = w->seg_first[0];
    if (from_lsn == 0)
        from_lsn = oldest;
    if (from_lsn < oldest)
        return cb_error_set(err, CB_ECORRUPT, NULL,
                            "wal: replay from lsn %" PRIu64 " asked, but the log starts at %" PRIu64
                            " (older records were checkpointed away)",
                            from_lsn, oldest);
    struct visit v = {fn, arg, from_lsn, st};
    return replay_segments(w, segment_of(w, from_lsn), &v, err);
}

/* ---- dropping segments ----
 * Deleting a 64 MB segment costs the kernel ~20 ms (its cached pages and
 * extents are freed); a checkpoint at 3 M readings/s dropped five, 0.1 s in
 * which the writer applied nothing. So wal_checkpoint only renames them (a
 * name ending .drop, which no listing takes for a segment) and the reaper
 * thread deletes them; wal_open deletes what a crash left. */

#define WAL_DROP_SUFFIX ".drop"

/* Deletes every wal-*.drop in the directory; errors are left for the next try. */
static void reap_drops(int dfd)
{
    DIR *d = open_listing(dfd);
    if (!d)
        return;
    struct dirent *e;
    size_t suffix = strlen(WAL_DROP_SUFFIX);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 4 + suffix && !strncmp(e->d_name, "wal-", 4) && !strcmp(e->d_name + n - suffix, WAL_DROP_SUFFIX))
            unlinkat(dfd, e->d_name, 0);
    }
    closedir(d);
}

static void *reaper_main(void *arg)
{
    wal *w = arg;
    pthread_mutex_lock(&w->reap_lock);
    for (;;) {
        while (!w->reap_pending && !w->reap_stop)
            pthread_cond_wait(&w->reap_wake, &w->reap_lock);
        int stop = w->reap_stop;
        w->reap_pending = 0;
        pthread_mutex_unlock(&w->reap_lock);
        reap_drops(w->dfd);
        pthread_mutex_lock(&w->reap_lock);
        if (stop)
            break;
    }
    pthread_mutex_unlock(&w->reap_lock);
    return NULL;
}

/* Wakes the reaper, started on first use; without a thread, deletes here. */
static void reap_soon(wal *w)
{
    pthread_mutex_lock(&w->reap_lock);
    if (!w->reaper_running)
        w->reaper_running = pthread_create(&w->reaper, NULL, reaper_main, w) == 0;
    w->reap_pending = 1;
    pthread_cond_signal(&w->reap_wake);
    int running = w->reaper_running;
    pthread_mutex_unlock(&w->reap_lock);
    if (!running)
        reap_drops(w->dfd);
}

int wal_checkpoint(wal *w, uint64_t durable_lsn, cb_error *err)
{
    size_t k = 0;
    int rc = 0;
    /* Segment k holds lsns seg_first[k] .. seg_first[k + 1] - 1. */
    while (k + 1 < w->nseg && w->seg_first[k + 1] - 1 <= durable_lsn) {
        char name[WAL_SEGMENT_NAME_MAX], drop[WAL_SEGMENT_NAME_MAX + 8];
        seg_name(name, w->seg_first[k]);
        snprintf(drop, sizeof drop, "wal-%016" PRIx64 WAL_DROP_SUFFIX, w->seg_first[k]);
        if (renameat(w->dfd, name, w->dfd, drop) != 0 && errno != ENOENT) {
            rc = sys_error(err, errno, "drop", name);
            break;
        }
        k++;
    }
    if (k)
        reap_soon(w);
    memmove(w->seg_first, w->seg_first + k, (w->nseg - k) * sizeof *w->seg_first);
    w->nseg -= k;
    w->stats.segments_deleted += k;
    assert(w->nseg > 0);
    return rc;
}

uint64_t wal_next_lsn(const wal *w)
{
    return w->next_lsn;
}

void wal_get_stats(const wal *w, struct wal_stats *out)
{
    *out = w->stats;
    out->next_lsn = w->next_lsn;
    out->segments = w->nseg;
    out->buffered_bytes = w->len;
}

void wal_close(wal *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->reap_lock);
    int reaping = w->reaper_running;
    w->reap_stop = 1;
    pthread_cond_signal(&w->reap_wake);
    pthread_mutex_unlock(&w->reap_lock);
    if (reaping) /* it deletes what is dropped, then stops */
        pthread_join(w->reaper, NULL);
    pthread_cond_destroy(&w->reap_wake);
    pthread_mutex_destroy(&w->reap_lock);
    if (w->fd >= 0 && w->dirty && w->fsync != WAL_FSYNC_OFF)
        sync_fd(w->fd);
    if (w->fd >= 0)
        close(w->fd);
    if (w->dfd >= 0)
        close(w->dfd);
    free(w->seg_first);
    free(w->buf);
    free(w);
}
