/* fuzz_wal_replay — any bytes as the one segment of a WAL: open and replay
 * must not crash, must hand out only records whose CRC and lsn check out
 * (each one is compared with the input at the offset it must have come
 * from), and appending after recovery must continue the sequence. */
#include "core/crc32c.h"
#include "store/wal.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct expect {
    const uint8_t *data;
    size_t size, off; /* where the next record must start in the input */
    uint64_t next_lsn;
};

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int check_record(void *arg, uint64_t lsn, const void *payload, size_t len)
{
    struct expect *e = arg;
    const uint8_t *h = e->data + e->off;
    if (lsn != e->next_lsn || e->off + 16 + len > e->size || le32(h) != len || le64(h + 8) != lsn ||
        memcmp(h + 16, payload, len) != 0)
        abort();
    uint32_t crc = crc32c(crc32c(0, h + 8, 8), payload, len);
    if (crc != le32(h + 4))
        abort();
    e->off += 16 + len;
    e->next_lsn++;
    return 0;
}

static int count_record(void *arg, uint64_t lsn, const void *payload, size_t len)
{
    (void)payload;
    (void)len;
    uint64_t *n = arg;
    if (lsn != ++*n)
        abort();
    return 0;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static int write_segment(const char *dir, const uint8_t *data, size_t size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/wal-0000000000000001.log", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int ok = size == 0 || write(fd, data, size) == (ssize_t)size;
    close(fd);
    return ok ? 0 : -1;
}

/* Replays what recovery kept, checks it against the input, then appends one
 * record and checks a second open sees exactly one more. */
static void exercise(const char *dir, const uint8_t *data, size_t size)
{
    struct wal_options opt = {WAL_FSYNC_OFF, 0};
    wal *w = NULL;
    if (wal_open(dir, &opt, &w, NULL) < 0)
        return;
    struct expect e = {data, size, 0, 1};
    if (wal_replay(w, 0, check_record, &e, NULL, NULL) != 0 || wal_next_lsn(w) != e.next_lsn)
        abort();
    if (wal_append(w, "x", 1, NULL, NULL) != 0 || wal_commit(w, NULL) != 0)
        abort();
    wal_close(w);
    if (wal_open(dir, &opt, &w, NULL) < 0)
        abort();
    uint64_t n = 0;
    struct wal_replay_stats st;
    if (wal_replay(w, 0, count_record, &n, &st, NULL) != 0 || n != e.next_lsn ||
        st.stop != WAL_STOP_NONE)
        abort();
    wal_close(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[] = "/tmp/fuzz_wal.XXXXXX";
    if (!mkdtemp(dir))
        return 0;
    if (write_segment(dir, data, size) == 0)
        exercise(dir, data, size);
    remove_dir(dir);
    return 0;
}
