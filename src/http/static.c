/* static — serves the web/ directory (dashboard, citizen page) for GET and
 * HEAD. Paths are confined to web_dir: no '..' or hidden segments, no
 * symlinks out, regular files only. */
#include "http_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct mime {
    const char *ext, *type;
};

static const struct mime mimes[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json; charset=utf-8"},
    {".geojson", "application/geo+json; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *mime_for(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof mimes / sizeof mimes[0]; i++)
            if (strcmp(dot, mimes[i].ext) == 0)
                return mimes[i].type;
    return "application/octet-stream";
}

/* Every segment must be a plain name: not empty-dot, not hidden, not '..'. */
static int path_safe(const char *path)
{
    if (path[0] != '/')
        return 0;
    for (const char *p = path; *p; p++)
        if (p[0] == '/' && p[1] == '.')
            return 0;
    return strchr(path, '\\') == NULL;
}

int http__static_serve(http_request *req)
{
    const char *path = req->path;
    if (!path_safe(path))
        return CB_ENOT_FOUND;
    const char *web = req->server->opt.cfg->web_dir;
    size_t n = strlen(path);
    const char *index = path[n - 1] == '/' ? "index.html" : "";
    char *full = arena_printf(req->arena, "%s%s%s", web, path, index);
    if (!full)
        return CB_ENOMEM;
    int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return CB_ENOT_FOUND;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return CB_ENOT_FOUND;
    }
    struct MHD_Response *r = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (!r) {
        close(fd);
        return CB_ENOMEM;
    }
    if (req->response)
        MHD_destroy_response(req->response);
    req->response = r;
    req->status = 200;
    MHD_add_response_header(r, "Content-Type", mime_for(full));
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    return 0;
}
