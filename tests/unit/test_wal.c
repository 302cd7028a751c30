/* test_wal — the write-ahead log: round trips across rotations and restarts,
 * torn tails at every byte, flipped bits, missing and misplaced data,
 * checkpoints, a full disk (RLIMIT_FSIZE), and kill -9 of a committing child.
 *
 * Payloads are a pure function of their lsn, so any replay can be checked
 * byte for byte without keeping a copy. */
#include "core/crc32c.h"
#include "store/wal.h"
#include "test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

static uint64_t mix(uint64_t x) /* splitmix64 */
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static size_t payload_len(uint64_t lsn, size_t max)
{
    return (size_t)(mix(lsn ^ 0x5EED) % (max + 1));
}

static unsigned char payload_byte(uint64_t lsn, size_t i)
{
    return (unsigned char)(mix(lsn * 1000003u + i / 8) >> (8 * (i % 8)));
}

static void payload_fill(uint64_t lsn, unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = payload_byte(lsn, i);
}

static int payload_matches(uint64_t lsn, const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != payload_byte(lsn, i))
            return 0;
    return 1;
}

/* Appends the record for the next lsn, with a length in [0, max]. */
static int append_gen(wal *w, size_t max)
{
    static unsigned char buf[4096];
    uint64_t lsn = wal_next_lsn(w), got = 0;
    size_t len = payload_len(lsn, max);
    if (len > sizeof buf)
        return -1;
    payload_fill(lsn, buf, len);
    int rc = wal_append(w, buf, len, &got, NULL);
    return rc < 0 ? rc : got == lsn ? 0 : -1;
}

/* Appends and commits n records in batches of 1..batch_max. */
static int write_records(wal *w, int n, size_t max, int batch_max, uint64_t *seed)
{
    cb_error err;
    while (n > 0) {
        int batch = 1 + (int)((*seed = mix(*seed)) % (uint64_t)batch_max);
        for (; batch > 0 && n > 0; batch--, n--)
            if (append_gen(w, max) < 0)
                return -1;
        if (wal_commit(w, &err) < 0) {
            fprintf(stderr, "  commit: %s\n", err.message);
            return -1;
        }
    }
    return 0;
}

struct check {
    size_t max;    /* payload lengths as in append_gen */
    uint64_t next; /* lsn expected next; 0: any */
    uint64_t n;
    int bad;
};

static int check_record(void *arg, uint64_t lsn, const void *payload, size_t len)
{
    struct check *c = arg;
    if (c->next && lsn != c->next)
        c->bad++;
    if (len != payload_len(lsn, c->max) || !payload_matches(lsn, payload, len))
        c->bad++;
    c->next = lsn + 1;
    c->n++;
    return 0;
}

static wal *open_wal(const char *dir, enum wal_fsync f, uint64_t seg_bytes)
{
    struct wal_options opt = {f, seg_bytes};
    cb_error err;
    wal *w = NULL;
    int rc = wal_open(dir, &opt, &w, &err);
    if (rc < 0)
        fprintf(stderr, "  wal_open: %s\n", err.message);
    CHECK_INT(rc, 0);
    return w;
}

/* Replays from from_lsn and checks every record; returns how many. */
static uint64_t replay_check(wal *w, uint64_t from_lsn, size_t max, struct wal_replay_stats *st)
{
    struct check c = {max, from_lsn, 0, 0};
    cb_error err;
    int rc = wal_replay(w, from_lsn, check_record, &c, st, &err);
    if (rc != 0)
        fprintf(stderr, "  wal_replay: %s\n", err.message);
    CHECK_INT(rc, 0);
    CHECK_INT(c.bad, 0);
    return c.n;
}

static int count_suffix(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    size_t sl = strlen(suffix);
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        n += l >= sl && strcmp(e->d_name + l - sl, suffix) == 0;
    }
    if (d)
        closedir(d);
    return n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* First lsns of the segments in dir, ascending; returns the count. */
static int list_segments(const char *dir, uint64_t *firsts, int max)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    unsigned long long lsn;
    char tail[8];
    while (d && n < max && (e = readdir(d)) != NULL)
        if (strlen(e->d_name) == 24 && sscanf(e->d_name, "wal-%16llx%7s", &lsn, tail) == 2 &&
            strcmp(tail, ".log") == 0)
            firsts[n++] = lsn;
    if (d)
        closedir(d);
    qsort(firsts, (size_t)n, sizeof *firsts, cmp_u64);
    return n;
}

static void seg_path(char *out, size_t n, const char *dir, uint64_t first)
{
    snprintf(out, n, "%s/wal-%016llx.log", dir, (unsigned long long)first);
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static unsigned char *read_all(const char *path, size_t *size)
{
    long n = file_size(path);
    FILE *f = fopen(path, "rb");
    unsigned char *b = n >= 0 && f ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (f)
        fclose(f);
    *size = b ? (size_t)n : 0;
    return b;
}

static int write_all(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(b, 1, n, f) == n;
    if (f && fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

/* Byte offsets of the records in a segment image, from their headers. */
static int record_offsets(const unsigned char *b, size_t n, size_t *offs, int max)
{
    int k = 0;
    for (size_t off = 0; off + 16 <= n && k < max;) {
        offs[k++] = off;
        off += 16 + ((size_t)b[off] | (size_t)b[off + 1] << 8 | (size_t)b[off + 2] << 16 |
                     (size_t)b[off + 3] << 24);
    }
    return k;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- tests -------------------------------------------------------------- */

TEST(test_round_trip_across_rotations)
{
    char dir[64];
    test_make_dir(dir);
    uint64_t seed = 1;
    wal *w = open_wal(dir, WAL_FSYNC_EVERYSEC, 16 << 10);
    CHECK_INT(wal_next_lsn(w), 1);
    /* batches of at most 20 records of at most 600 bytes fit a segment */
    CHECK_INT(write_records(w, 3000, 600, 20, &seed), 0);
    CHECK_INT(wal_next_lsn(w), 3001);
    wal_close(w);

    uint64_t firsts[512];
    int nseg = list_segments(dir, firsts, 512);
    CHECK(nseg >= 5);
    CHECK_INT(firsts[0], 1);
    for (int i = 0; i < nseg; i++) {
        char path[512];
        seg_path(path, sizeof path, dir, firsts[i]);
        CHECK(file_size(path) <= 16 << 10);
        CHECK(file_size(path) > 0);
    }
    w = open_wal(dir, WAL_FSYNC_EVERYSEC, 16 << 10);
    struct wal_replay_stats st;
    CHECK_INT(replay_check(w, 0, 600, &st), 3000);
    CHECK_INT(st.records, 3000);
    CHECK_INT(st.first_lsn, 1);
    CHECK_INT(st.last_lsn, 3000);
    CHECK_INT(st.stop, WAL_STOP_NONE);
    CHECK_INT(wal_next_lsn(w), 3001);
    struct wal_stats ws;
    wal_get_stats(w, &ws);
    CHECK_INT(ws.segments, nseg);
    /* appends after a restart continue the sequence in the same files */
    CHECK_INT(write_records(w, 100, 600, 20, &seed), 0);
    wal_close(w);
    w = open_wal(dir, WAL_FSYNC_EVERYSEC, 16 << 10);
    CHECK_INT(replay_check(w, 1, 600, NULL), 3100);
    wal_close(w);
    test_remove_dir(dir);
}

TEST(test_from_lsn_filters)
{
    char dir[64];
    test_make_dir(dir);
    uint64_t seed = 2;
    wal *w = open_wal(dir, WAL_FSYNC_OFF, 4096);
    CHECK_INT(write_records(w, 500, 200, 5, &seed), 0);
    struct wal_replay_stats st;
    CHECK_INT(replay_check(w, 250, 200, &st), 251);
    CHECK_INT(st.first_lsn, 250);
    CHECK_INT(st.last_lsn, 500);
    CHECK_INT(replay_check(w, 500, 200, NULL), 1);
    CHECK_INT(replay_check(w, 501, 200, &st), 0);
    CHECK_INT(st.first_lsn, 0);
    CHECK_INT(replay_check(w, 1, 200, NULL), 500);
    CHECK_INT(replay_check(w, 0, 200, NULL), 500);
    wal_close(w);
    test_remove_dir(dir);
}

static int abort_at_ten(void *arg, uint64_t lsn, const void *payload, size_t len)
{
    (void)payload;
    (void)len;
    *(uint64_t *)arg = lsn;
    return lsn == 10 ? 42 : 0;
}

TEST(test_callback_aborts_replay)
{
    char dir[64];
    test_make_dir(dir);
    uint64_t seed = 3, last = 0;
    wal *w = open_wal(dir, WAL_FSYNC_OFF, 0);
    CHECK_INT(write_records(w, 50, 100, 7, &seed), 0);
    struct wal_replay_stats st;
    CHECK_INT(wal_replay(w, 1, abort_at_ten, &last, &st, NULL), 42);
    CHECK_INT(last, 10);
    CHECK_INT(st.records, 9);
    wal_close(w);
    test_remove_dir(dir);
}

/* Cuts the last record at every byte: everything before it survives and the
 * next append takes its lsn. */
TEST(test_torn_tail_at_every_offset)
{
    char dir[64], path[512];
    test_make_dir(dir);
    uint64_t seed = 4;
    wal *w = open_wal(dir, WAL_FSYNC_OFF, 0);
    CHECK_INT(write_records(w, 20, 60, 3, &seed), 0);
    wal_close(w);
    seg_path(path, sizeof path, dir, 1);
    size_t size, offs[32];
    unsigned char *image = read_all(path, &size);
    CHECK(image != NULL);
    if (!image) {
        test_remove_dir(dir);
        return;
    }
    CHECK_INT(record_offsets(image, size, offs, 32), 20);
    size_t last = offs[19];
    int failures = 0;
    for (size_t cut = last; cut < size; cut++) {
        CHECK_INT(write_all(path, image, cut), 0);
        w = open_wal(dir, WAL_FSYNC_OFF, 0);
        if (!w)
            break;
        struct wal_replay_stats st;
        enum wal_stop want = cut == last           ? WAL_STOP_NONE
                             : cut - last < 16     ? WAL_STOP_SHORT_HEADER
                                                   : WAL_STOP_SHORT_PAYLOAD;
        failures += replay_check(w, 1, 60, &st) != 19;
        failures += st.stop != want || st.cut_bytes != cut - last;
        failures += want != WAL_STOP_NONE && st.stop_offset != last;
        failures += file_size(path) != (long)last;
        failures += wal_next_lsn(w) != 20 || append_gen(w, 60) != 0;
        failures += wal_commit(w, NULL) != 0;
        wal_close(w);
        w = open_wal(dir, WAL_FSYNC_OFF, 0);
        failures += replay_check(w, 1, 60, &st) != 20 || st.stop != WAL_STOP_NONE;
        failures += file_size(path) != (long)size;
        wal_close(w);
    }
    CHECK_INT(failures, 0);
    CHECK_INT(count_suffix(dir, ".corrupt"), 0); /* an unfinished write leaves no copy */
    free(image);
    test_remove_dir(dir);
}

/* A flipped payload bit in the middle of the only segment: replay stops at
 * that record, the rest is cut but kept in a .corrupt copy. */
TEST(test_flipped_bit_stops_replay)
{
    char dir[64], path[512];
    test_make_dir(dir);
    uint64_t seed = 5;
    wal *w = open_wal(dir, WAL_FSYNC_OFF, 0);
    CHECK_INT(write_records(w, 200, 300, 10, &seed), 0);
    wal_close(w);
    seg_path(path, sizeof path, dir, 1);
    size_t size, offs[256];
    unsigned char *image = read_all(path, &size);
    if (!image) {
        test_remove_dir(dir);
        return;
    }
    CHECK_INT(record_offsets(image, size, offs, 256), 200);
    int k = 100;
    while (offs[k + 1] - offs[k] < 18) /* a record with a payload to damage */
        k++;
    image[offs[k] + 17] ^= 0x10;
    CHECK_INT(write_all(path, image, size), 0);

    w = open_wal(dir, WAL_FSYNC_OFF, 0);
    struct wal_replay_stats st;
    CHECK_INT(replay_check(w, 1, 300, &st), k);
    CHECK_INT(st.stop, WAL_STOP_BAD_CRC);
    CHECK_STR(st.stop_segment, "wal-0000000000000001.log");
    CHECK_INT(st.stop_offset, offs[k]);
    CHECK_INT(st.cut_bytes, size - offs[k]);
    CHECK_INT(wal_next_lsn(w), k + 1);
    CHECK_INT(file_size(path), offs[k]);
    char copy[600];
    snprintf(copy, sizeof copy, "%s.cut-%zu.corrupt", path, offs[k]);
    CHECK_INT(file_size(copy), size - offs[k]);
    CHECK_INT(append_gen(w, 300), 0);
    CHECK_INT(wal_commit(w, NULL), 0);
    wal_close(w);
    w = open_wal(dir, WAL_FSYNC_OFF, 0);
    CHECK_INT(replay_check(w, 1, 300, &st), k + 1);
    CHECK_INT(st.stop, WAL_STOP_NONE);
    wal_close(w);
    free(image);
    test_remove_dir(dir);
}

/* A flipped bit in an early segment: the later segments are renamed aside,
 * intact, and the log continues from the last good record. */
TEST(test_corruption_sets_later_segments_aside)
{
    char dir[64], path[512];
    test_make_dir(dir);
    uint64_t seed = 6, firsts[64];
    wal *w = open_wal(dir, WAL_FSYNC_OFF, 4096);
    CHECK_INT(write_records(w, 200, 200, 4, &seed), 0);
    wal_close(w);
    int nseg = list_segments(dir, firsts, 64);
    CHECK(nseg >= 6);
    if (nseg < 6) {
        test_remove_dir(dir);
        return;
    }
    seg_path(path, sizeof path, dir, firsts[1]);
    size_t size, offs[64], later_size;
    unsigned char *image = read_all(path, &size);
    char later[512], aside[600];
    seg_path(later, sizeof later, dir, firsts[nseg - 1]);
    unsigned char *later_image = read_all(later, &later_size);
    if (!image || !later_image) {
        test_remove_dir(dir);
        return;
    }
    int n = record_offsets(image, size, offs, 64);
    int k = n / 2;
    image[offs[k] + 9] ^= 0x01; /* the lsn field: covered by the CRC */
    CHECK_INT(write_all(path, image, size), 0);

    w = open_wal(dir, WAL_FSYNC_OFF, 4096);
    struct wal_replay_stats st;
    uint64_t good = firsts[1] - 1 + (uint64_t)k;
    CHECK_INT(replay_check(w, 1, 200, &st), good);
    CHECK_INT(st.stop, WAL_STOP_BAD_CRC);
    CHECK_INT(st.stop_offset, offs[k]);
    CHECK_INT(st.set_aside, nseg - 2);
    CHECK_INT(wal_next_lsn(w), good + 1);
    CHECK_INT(count_suffix(dir, ".log"), 2);
    CHECK_INT(count_suffix(dir, ".corrupt"), nseg - 2 + 1); /* + the cut copy */
    snprintf(aside, sizeof aside, "%s.corrupt", later);
    size_t aside_size;
    unsigned char *aside_image = read_all(aside, &aside_size);
    CHECK(aside_image && aside_size == later_size &&
          memcmp(aside_image, later_image, later_size) == 0);
    CHECK_INT(write_records(w, 50, 200, 4, &seed), 0);
    wal_close(w);
    w = open_wal(dir, WAL_FSYNC_OFF, 4096);
    CHECK_INT(replay_check(w, 1, 200, &st), good + 50);
    CHECK_INT(st.stop, WAL_STOP_NONE);
    wal_close(w);
    free(image);
    free(later_image);
    free(aside_image);
    test_remove_dir(dir);
}

/* An intact record at the wrong place (copied over its successor) has a
 * good CRC but the wrong lsn. */
TEST(test_misplaced_record_is_caught)
{
    char dir[64], path[512];
    test_make_dir(dir);
    wal *w = open_wal(dir, WAL_FSYNC_OFF, 0);
    unsigned char p[32] = {0};
    for (int i = 0; i < 10; i++)
        CHECK_INT(wal_append(w, p, sizeof p, NULL, NULL), 0);
    CHECK_INT(wal_commit(w, NULL), 0);
    wal_close(w);
    seg_path(path, sizeof path, dir, 1);
    size_t size;
    unsigned char *image = read_all(path, &size);
    if (!image) {
        test_remove_dir(dir);
        return;
    }
    CHECK_INT(size, 10 * 48);
    memcpy(image + 5 * 48, image + 4 * 48, 48);
    CHECK_INT(write_all(path, image, size), 0);
    w = open_wal(dir, WAL_FSYNC_OFF, 0);
    struct wal_replay_stats st;
    struct check c = {0, 1, 0, 0};
    CHECK_INT(wal_replay(w, 1, check_record, &c, &st, NULL), 0);
    CHECK_INT(c.n, 5);
    CHECK_INT(st.stop, WAL_STOP_BAD_LSN);
    CHECK_INT(st.stop_offset, 5 * 48);
    CHECK_INT(wal_next_lsn(w), 6);
    wal_close(w);
    free(image);
    test_remove_dir(dir);
}

/* A header claiming more than WAL_MAX_PAYLOAD stops replay without reading on. */
TEST(test_bad_length_is_caught)
{
    char dir[64], path[512];
    test_make_dir(dir);
    uint64_t seed = 7;
    wal *w = open_wal(dir, WAL_FSYNC_OFF, 0);
    CHECK_INT(write_records(w, 10, 100, 3, &seed), 0);
    wal_close(w);
    seg_path(path, sizeof path, dir, 1);
    size_t size, offs[16];
    unsigned char *image = read_all(path, &size);
    if (!image) {
        test_remove_dir(dir);
        return;
    }
    record_offsets(image, size, offs, 16);
    image[offs[3] + 3] = 0x7f;
    CHECK_INT(write_all(path, image, size), 0);
    w = open_wal(dir, WAL_FSYNC_OFF, 0);
    struct wal_replay_stats st;
    CHECK_INT(replay_check(w, 1, 100, &st), 3);
    CHECK_INT(st.stop, WAL_STOP_BAD_LENGTH);
    CHECK_STR(wal_stop_name(st.stop), "bad_length");
    CHECK_INT(wal_next_lsn(w), 4);
    wal_close(w);
    free(image);
    test_remove_dir(dir);
}

/* A segment deleted by hand leaves a gap: the log ends before it and the
 * segments after it are set aside whole. */
TEST(test_missing_segment_ends_log)
{
    char dir[64], path[512];
    test_make_dir(dir);
    uint64_t seed = 8, firsts[64];
    wal *w = open_wal(dir, WAL_FSYNC_OFF, 4096);
    CHECK_INT(write_records(w, 150, 200, 4, &seed), 0);
    wal_close(w);
    int nseg = list_segments(dir, firsts, 64);
    CHECK(nseg >= 4);
    if (nseg < 4) {
        test_remove_dir(dir);
        return;
    }
    seg_path(path, sizeof path, dir, firsts[2]);
    CHECK_INT(unlink(path), 0);
    w = open_wal(dir, WAL_FSYNC_OFF, 4096);
    struct wal_replay_stats st;
    CHECK_INT(replay_check(w, 1, 200, &st), firsts[2] - 1);
    CHECK_INT(st.stop, WAL_STOP_BAD_LSN);
    CHECK_INT(st.stop_offset, 0);
    CHECK_INT(st.set_aside, nseg - 3);
    CHECK_INT(wal_next_lsn(w), firsts[2]);
    CHECK_INT(count_suffix(dir, ".corrupt"), nseg - 3);
    CHECK_INT(write_records(w, 10, 200, 4, &seed), 0);
    wal_close(w);
    w = open_wal(dir, WAL_FSYNC_OFF, 4096);
    CHECK_INT(replay_check(w, 1, 200, NULL), firsts[2] - 1 + 10);
    wal_close(w);
    test_remove_dir(dir);
}

TEST(test_checkpoint_deletes_old_segments_only)
{
    char dir[64];
    test_make_dir(dir);
    uint64_t seed = 9, firsts[64];
    wal *w = open_wal(dir, WAL_FSYNC_OFF, 4096);
    CHECK_INT(write_records(w, 200, 200, 4, &seed), 0);
    int nseg = list_segments(dir, firsts, 64);
    CHECK(nseg >= 6);
    if (nseg < 6) {
        test_remove_dir(dir);
        return;
    }
    /* one lsn short of covering segment 2: only segments 0 and 1 may go */
    CHECK_INT(wal_checkpoint(w, firsts[3] - 2, NULL), 0);
    CHECK_INT(list_segments(dir, firsts + 32, 32), nseg - 2);
    CHECK_INT(firsts[32], firsts[2]);
    CHECK_INT(wal_checkpoint(w, firsts[3] - 1, NULL), 0);
    CHECK_INT(count_suffix(dir, ".log"), nseg - 3);
    struct wal_stats ws;
    wal_get_stats(w, &ws);
    CHECK_INT(ws.segments, nseg - 3);
    CHECK_INT(ws.segments_deleted, 3);
    CHECK_INT(replay_check(w, firsts[3], 200, NULL), 200 - firsts[3] + 1);
    cb_error err;
    CHECK_INT(wal_replay(w, 1, check_record, &(struct check){200, 1, 0, 0}, NULL, &err),
              CB_ECORRUPT);
    CHECK(strstr(err.message, "checkpointed") != NULL);
    /* everything durable: all but the current segment go, lsns continue */
    CHECK_INT(wal_checkpoint(w, UINT64_MAX, NULL), 0);
    CHECK_INT(count_suffix(dir, ".log"), 1);
    CHECK_INT(list_segments(dir, firsts + 32, 32), 1);
    CHECK_INT(firsts[32], firsts[nseg - 1]);
    wal_close(w); /* waits for the reaper: no dropped file is left */
    CHECK_INT(count_suffix(dir, ".drop"), 0);
    /* a crash between the rename and the delete: wal_open deletes the file, and nothing else */
    char path[128];
    snprintf(path, sizeof path, "%s/wal-0000000000000001.drop", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "%s/notes.drop", dir);
    if ((f = fopen(path, "w")) != NULL)
        fclose(f);
    CHECK_INT(count_suffix(dir, ".drop"), 2);
    w = open_wal(dir, WAL_FSYNC_OFF, 4096);
    CHECK_INT(wal_next_lsn(w), 201);
    CHECK_INT(replay_check(w, 0, 200, NULL), 200 - firsts[nseg - 1] + 1);
    CHECK_INT(count_suffix(dir, ".drop"), 1); /* notes.drop is not the wal's */
    wal_close(w);
    test_remove_dir(dir);
}

/* Disk full, simulated with RLIMIT_FSIZE (write fails with EFBIG): the
 * commit is refused, no torn bytes stay, and commits work again later. */
TEST(test_storage_full_and_recovery)
{
    char dir[64], path[512];
    test_make_dir(dir);
    uint64_t seed = 10;
    wal *w = open_wal(dir, WAL_FSYNC_ALWAYS, 0);
    CHECK_INT(write_records(w, 10, 100, 10, &seed), 0);
    seg_path(path, sizeof path, dir, 1);
    long before = file_size(path);

    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)before + 2000;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK_INT(setrlimit(RLIMIT_FSIZE, &lim), 0);

    for (int i = 0; i < 100; i++)
        CHECK_INT(append_gen(w, 100), 0);
    cb_error err;
    CHECK_INT(wal_commit(w, &err), CB_ESTORAGE_FULL);
    CHECK(strstr(err.message, "File too large") != NULL);
    CHECK_INT(file_size(path), before);
    CHECK_INT(wal_next_lsn(w), 11);
    struct wal_stats ws;
    wal_get_stats(w, &ws);
    CHECK_INT(ws.write_errors, 1);
    CHECK_INT(ws.buffered_bytes, 0);
    /* a small commit that fits still goes through */
    CHECK_INT(append_gen(w, 100), 0);
    CHECK_INT(wal_commit(w, NULL), 0);
    long small = file_size(path);
    CHECK(small > before);

    CHECK_INT(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    CHECK_INT(write_records(w, 100, 100, 100, &seed), 0);
    CHECK_INT(wal_next_lsn(w), 112);
    wal_close(w);
    w = open_wal(dir, WAL_FSYNC_ALWAYS, 0);
    struct wal_replay_stats st;
    CHECK_INT(replay_check(w, 1, 100, &st), 111);
    CHECK_INT(st.stop, WAL_STOP_NONE);
    wal_close(w);
    test_remove_dir(dir);
}

TEST(test_group_commit_and_fsync_policies)
{
    char dir[64];
    test_make_dir(dir);
    struct wal_stats ws;
    wal *w = open_wal(dir, WAL_FSYNC_ALWAYS, 0);
    for (int i = 0; i < 1000; i++)
        CHECK_INT(append_gen(w, 100), 0);
    wal_get_stats(w, &ws);
    CHECK_INT(ws.writes, 0); /* appends only buffer */
    CHECK(ws.buffered_bytes >= 16000);
    CHECK_INT(wal_commit(w, NULL), 0);
    CHECK_INT(wal_commit(w, NULL), 0); /* nothing to do */
    wal_get_stats(w, &ws);
    CHECK_INT(ws.writes, 1);
    CHECK_INT(ws.commits, 1);
    CHECK_INT(ws.fsyncs, 1);
    CHECK_INT(ws.records_written, 1000);
    CHECK_INT(ws.buffered_bytes, 0);
    wal_close(w);

    w = open_wal(dir, WAL_FSYNC_EVERYSEC, 0);
    CHECK_INT(wal_sync_if_due(w, 0, NULL), 0); /* nothing written yet */
    CHECK_INT(append_gen(w, 100), 0);
    CHECK_INT(wal_commit(w, NULL), 0);
    CHECK_INT(wal_sync_if_due(w, 5000, NULL), 0);
    wal_get_stats(w, &ws);
    CHECK_INT(ws.fsyncs, 1);
    CHECK_INT(append_gen(w, 100), 0);
    CHECK_INT(wal_commit(w, NULL), 0);
    CHECK_INT(wal_sync_if_due(w, 5999, NULL), 0); /* too soon */
    wal_get_stats(w, &ws);
    CHECK_INT(ws.fsyncs, 1);
    CHECK_INT(wal_sync_if_due(w, 6000, NULL), 0);
    CHECK_INT(wal_sync_if_due(w, 9000, NULL), 0); /* nothing new */
    wal_get_stats(w, &ws);
    CHECK_INT(ws.fsyncs, 2);
    wal_close(w);

    w = open_wal(dir, WAL_FSYNC_OFF, 0);
    CHECK_INT(append_gen(w, 100), 0);
    CHECK_INT(wal_commit(w, NULL), 0);
    CHECK_INT(wal_sync_if_due(w, 100000, NULL), 0);
    wal_get_stats(w, &ws);
    CHECK_INT(ws.fsyncs, 0);
    CHECK_INT(replay_check(w, 1, 100, NULL), 1003);
    wal_close(w);
    test_remove_dir(dir);
}

static int limits_record(void *arg, uint64_t lsn, const void *payload, size_t len)
{
    int *ok = arg;
    *ok += (lsn == 1 && len == 0) ||
           (lsn == 2 && len == WAL_MAX_PAYLOAD && payload_matches(2, payload, len)) ||
           (lsn == 3 && len == 1 && *(const unsigned char *)payload == 0x5a);
    return 0;
}

TEST(test_rollback_drops_uncommitted)
{
    char dir[64];
    test_make_dir(dir);
    wal *w = open_wal(dir, WAL_FSYNC_OFF, 0);
    CHECK_INT(append_gen(w, 100), 0);
    CHECK_INT(wal_commit(w, NULL), 0);
    for (int i = 0; i < 3; i++)
        CHECK_INT(wal_append(w, "never", 5, NULL, NULL), 0);
    CHECK_INT(wal_next_lsn(w), 5);
    wal_rollback(w);
    CHECK_INT(wal_next_lsn(w), 2);
    struct wal_stats ws;
    wal_get_stats(w, &ws);
    CHECK_INT(ws.buffered_bytes, 0);
    CHECK_INT(append_gen(w, 100), 0);
    CHECK_INT(wal_commit(w, NULL), 0);
    wal_close(w);
    w = open_wal(dir, WAL_FSYNC_OFF, 0);
    CHECK_INT(replay_check(w, 1, 100, NULL), 2);
    CHECK_INT(wal_next_lsn(w), 3);
    wal_close(w);
    test_remove_dir(dir);
}

/* Over-long payloads are refused; empty and maximum-size ones round trip,
 * and a commit bigger than a segment gets a segment of its own. */
TEST(test_payload_limits)
{
    char dir[64];
    test_make_dir(dir);
    wal *w = open_wal(dir, WAL_FSYNC_OFF, 1 << 20);
    cb_error err;
    static const unsigned char one[1] = {0x5a};
    uint64_t lsn = 0;
    CHECK_INT(wal_append(w, one, (size_t)WAL_MAX_PAYLOAD + 1, &lsn, &err), CB_EINVALID_FIELD);
    CHECK_STR(err.field, "payload");
    CHECK_INT(lsn, 0);
    CHECK_INT(wal_next_lsn(w), 1);
    CHECK_INT(wal_append(w, NULL, 0, &lsn, NULL), 0);
    CHECK_INT(lsn, 1);
    CHECK_INT(wal_commit(w, NULL), 0);
    unsigned char *big = malloc(WAL_MAX_PAYLOAD);
    CHECK(big != NULL);
    if (!big) {
        wal_close(w);
        test_remove_dir(dir);
        return;
    }
    payload_fill(2, big, WAL_MAX_PAYLOAD);
    CHECK_INT(wal_append(w, big, WAL_MAX_PAYLOAD, &lsn, NULL), 0);
    CHECK_INT(lsn, 2);
    CHECK_INT(wal_commit(w, NULL), 0);
    free(big);
    CHECK_INT(wal_append(w, one, 1, NULL, NULL), 0);
    CHECK_INT(wal_commit(w, NULL), 0);
    wal_close(w);
    CHECK_INT(count_suffix(dir, ".log"), 3);
    w = open_wal(dir, WAL_FSYNC_OFF, 1 << 20);
    int ok = 0;
    CHECK_INT(wal_replay(w, 1, limits_record, &ok, NULL, NULL), 0);
    CHECK_INT(ok, 3);
    wal_close(w);
    test_remove_dir(dir);
}

TEST(test_foreign_files_and_bad_options)
{
    char dir[64], path[512];
    test_make_dir(dir);
    const char *foreign[] = {"notes.txt", "wal-XYZ.log", "wal-0000000000000000.log",
                             "wal-0000000000000001.log.corrupt", "wal-000000000000000A.log"};
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, foreign[i]);
        CHECK_INT(write_all(path, (const unsigned char *)"junk", 4), 0);
    }
    uint64_t seed = 11;
    wal *w = open_wal(dir, WAL_FSYNC_OFF, 0);
    CHECK_INT(wal_next_lsn(w), 1);
    CHECK_INT(write_records(w, 5, 50, 5, &seed), 0);
    wal_close(w);
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, foreign[i]);
        CHECK_INT(file_size(path), 4);
    }
    cb_error err;
    struct wal_options bad = {(enum wal_fsync)7, 0};
    CHECK_INT(wal_open(dir, &bad, &w, &err), CB_ECONFIG);
    CHECK(w == NULL);
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    CHECK_INT(wal_open(path, NULL, &w, &err), CB_EIO); /* a file, not a directory */
    CHECK(strstr(err.message, "notes.txt") != NULL);
    snprintf(path, sizeof path, "%s/sub", dir);
    CHECK_INT(wal_open(path, NULL, &w, NULL), 0); /* created */
    wal_close(w);
    snprintf(path, sizeof path, "%s/sub/wal-0000000000000001.log", dir);
    CHECK_INT(file_size(path), 0);
    unlink(path);
    snprintf(path, sizeof path, "%s/sub", dir);
    rmdir(path);
    test_remove_dir(dir);
}

/* ---- kill -9 ------------------------------------------------------------ */

#define CRASH_MAX 150

static void crash_child(const char *dir, enum wal_fsync f, int ack_fd)
{
    struct wal_options opt = {f, 64 << 10};
    wal *w = NULL;
    if (wal_open(dir, &opt, &w, NULL) < 0)
        _exit(3);
    uint64_t seed = (uint64_t)getpid();
    for (;;) {
        int n = 1 + (int)((seed = mix(seed)) % 20);
        for (int i = 0; i < n; i++)
            if (append_gen(w, CRASH_MAX) < 0)
                _exit(4);
        if (wal_commit(w, NULL) < 0 || wal_sync_if_due(w, mono_ms(), NULL) < 0)
            _exit(5);
        uint64_t acked = wal_next_lsn(w) - 1;
        if (write(ack_fd, &acked, sizeof acked) != sizeof acked)
            _exit(6);
    }
}

/* Runs one child until a random moment, kills it, and returns the highest
 * lsn it acknowledged (0 if none). */
static uint64_t crash_once(const char *dir, enum wal_fsync f, uint64_t *seed)
{
    int fds[2];
    if (pipe(fds) != 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        crash_child(dir, f, fds[1]);
    }
    close(fds[1]);
    uint64_t acked = 0, v;
    if (read(fds[0], &acked, sizeof acked) != sizeof acked) /* it is running */
        acked = 0;
    struct timespec ts = {0, (long)((*seed = mix(*seed)) % 8000) * 1000};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    while (read(fds[0], &v, sizeof v) == sizeof v)
        acked = v;
    close(fds[0]);
    return acked;
}

TEST(test_kill9_loses_no_acknowledged_write)
{
    char dir[64];
    test_make_dir(dir);
    uint64_t seed = 12, acked_max = 0;
    int lost = 0, bad = 0;
    for (int round = 0; round < 24; round++) {
        enum wal_fsync f = round % 2 ? WAL_FSYNC_EVERYSEC : WAL_FSYNC_ALWAYS;
        uint64_t acked = crash_once(dir, f, &seed);
        CHECK(acked >= acked_max);
        acked_max = acked;
        wal *w = open_wal(dir, WAL_FSYNC_OFF, 64 << 10);
        if (!w)
            break;
        struct check c = {CRASH_MAX, 1, 0, 0};
        struct wal_replay_stats st;
        CHECK_INT(wal_replay(w, 1, check_record, &c, &st, NULL), 0);
        lost += st.last_lsn < acked;
        bad += c.bad;
        CHECK_INT(c.n, wal_next_lsn(w) - 1);
        wal_close(w);
    }
    CHECK_INT(lost, 0);
    CHECK_INT(bad, 0);
    CHECK(acked_max > 24);
    test_remove_dir(dir);
}

TEST_MAIN(test_round_trip_across_rotations, test_from_lsn_filters, test_callback_aborts_replay,
          test_torn_tail_at_every_offset, test_flipped_bit_stops_replay,
          test_corruption_sets_later_segments_aside, test_misplaced_record_is_caught,
          test_bad_length_is_caught, test_missing_segment_ends_log,
          test_checkpoint_deletes_old_segments_only, test_storage_full_and_recovery,
          test_group_commit_and_fsync_policies, test_rollback_drops_uncommitted,
          test_payload_limits, test_foreign_files_and_bad_options,
          test_kill9_loses_no_acknowledged_write)
