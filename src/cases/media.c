/* media — content-addressed photo storage; see media.h. */
#include "cases/media.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct media_type {
    const char *mime, *ext;
    const char *magic;
    size_t magic_len, magic_at;
};

static const struct media_type types[] = {
    {"image/jpeg", "jpg", "\xff\xd8\xff", 3, 0},
    {"image/png", "png", "\x89PNG\r\n\x1a\n", 8, 0},
    {"image/webp", "webp", "WEBP", 4, 8}, /* "RIFF" <size> "WEBP" */
};
#define NTYPES (sizeof types / sizeof types[0])

static const struct media_type *type_by_mime(const char *ct)
{
    size_t n = ct ? strcspn(ct, "; ") : 0;
    for (size_t i = 0; i < NTYPES; i++)
        if (n == strlen(types[i].mime) && strncasecmp(ct, types[i].mime, n) == 0)
            return &types[i];
    return NULL;
}

static int magic_ok(const struct media_type *t, const unsigned char *d, size_t len)
{
    if (len < t->magic_at + t->magic_len)
        return 0;
    if (t->magic_at == 8 && memcmp(d, "RIFF", 4) != 0)
        return 0;
    return memcmp(d + t->magic_at, t->magic, t->magic_len) == 0;
}

int media_store(const char *data_dir, const char *content_type, const void *data, size_t len, long long max,
                char name[MEDIA_NAME_MAX], cb_error *err)
{
    const struct media_type *t = type_by_mime(content_type);
    if (!t)
        return cb_error_set(err, CB_EMEDIA_TYPE, "Content-Type",
                            "a photo is image/jpeg, image/png or image/webp, not '%s'",
                            content_type ? content_type : "(none)");
    if ((long long)len > max)
        return cb_error_set(err, CB_ETOO_LARGE, NULL, "the photo has %zu bytes; at most %lld are accepted", len, max);
    if (!magic_ok(t, data, len))
        return cb_error_set(err, CB_EMEDIA_TYPE, "Content-Type", "the body is not a %s file", t->mime);
    unsigned char hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(hash, data, len);
    char hex[crypto_hash_sha256_BYTES * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
    snprintf(name, MEDIA_NAME_MAX, "%s.%s", hex, t->ext);
    char dir[1200], path[1300], tmp[1320];
    snprintf(dir, sizeof dir, "%s/media", data_dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return cb_error_set(err, CB_EIO, NULL, "creating %s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (access(path, F_OK) == 0)
        return 0; /* the same photo again */
    /* a name of its own: two requests may upload the same photo at once */
    snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return cb_error_set(err, CB_EIO, NULL, "writing %s: %s", tmp, strerror(errno));
    if (fchmod(fd, 0644) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return cb_error_set(err, CB_EIO, NULL, "writing %s: %s", tmp, strerror(e));
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return cb_error_set(err, e == ENOSPC ? CB_ESTORAGE_FULL : CB_EIO, NULL, "writing the photo: %s",
                                strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    int synced = fsync(fd) == 0 ? 0 : errno;
    if (close(fd) != 0 && !synced)
        synced = errno;
    if (synced || rename(tmp, path) != 0) {
        int e = synced ? synced : errno;
        unlink(tmp);
        return cb_error_set(err, CB_EIO, NULL, "storing the photo: %s", strerror(e));
    }
    return 0;
}

/* "<64 hex>.<ext>" with a known extension; nothing else names a file. */
static const struct media_type *valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 66)
        return NULL;
    for (size_t i = 0; i < 64; i++)
        if (!strchr("0123456789abcdef", name[i]))
            return NULL;
    for (size_t i = 0; i < NTYPES; i++)
        if (name[64] == '.' && strcmp(name + 65, types[i].ext) == 0)
            return &types[i];
    return NULL;
}

int media_load(const char *data_dir, const char *name, char **data, size_t *len, const char **content_type,
               cb_error *err)
{
    const struct media_type *t = valid_name(name);
    if (!t)
        return cb_error_set(err, CB_ENOT_FOUND, NULL, "no such media");
    char path[1300];
    snprintf(path, sizeof path, "%s/media/%s", data_dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return cb_error_set(err, CB_ENOT_FOUND, NULL, "no such media");
    struct stat sb;
    char *buf = NULL;
    int rc = fstat(fileno(f), &sb) == 0 && (buf = malloc((size_t)sb.st_size + 1)) != NULL ? 0 : CB_EIO;
    if (rc == 0 && fread(buf, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size)
        rc = CB_EIO;
    fclose(f);
    if (rc != 0) {
        free(buf);
        return cb_error_set(err, rc, NULL, "reading %s", name);
    }
    *data = buf;
    *len = (size_t)sb.st_size;
    *content_type = t->mime;
    return 0;
}
