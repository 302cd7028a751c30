/* open311 — Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2), the
 * door through which citizens and other city systems report and follow
 * problems (一机智享生活): services are the case category tree, service
 * requests are cases (channel citizen), agency_responsible is the case's
 * department and expected_datetime its handling deadline.
 *
 * The module is pure formatting and reading: the form-urlencoded parser of
 * POST bodies (form.c), a small XML writer for the .xml variants (xml.c)
 * and the read queries over the case tables plus the translation of a POST
 * into a case intake body (open311.c). Reads borrow the caller's db
 * connection; writes go through cases_intake (cases.h). Reporter names,
 * phones and e-mail addresses never appear in any answer. */
#ifndef CB_OPEN311_H
#define CB_OPEN311_H

#include "core/buf.h"
#include "core/err.h"
#include "store/db.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- application/x-www-form-urlencoded (form.c) ---- */

#define OPEN311_FORM_MAX_PAIRS 256

/* The decoded pairs of a body, in order. Names and values are
 * NUL-terminated UTF-8 without NUL bytes; they point into buf. Owned by the
 * caller: open311_form_free. */
struct open311_form {
    size_t n;
    const char **name, **value;
    char *buf;
};

/* Decodes "a=1&b=x+y%21" ('+' is a space, %XX a byte; a pair without '='
 * has the value ""; empty pairs are skipped). CB_EINVALID_FIELD (naming the
 * pair) for a bad %-escape, a NUL byte, text that is not UTF-8 or more than
 * OPEN311_FORM_MAX_PAIRS pairs; out is then empty (free is still safe). */
int open311_form_parse(const char *body, size_t len, struct open311_form *out, cb_error *err);
/* The first value of name, or NULL. */
const char *open311_form_get(const struct open311_form *f, const char *name);
void open311_form_free(struct open311_form *f);

/* ---- XML (xml.c) ---- */

/* Writes v as the XML document of the standard: <root> holding, for an
 * array, one element per item named after the container (services/service,
 * service_requests/request, errors/error, attributes/attribute,
 * values/value, endpoints/endpoint, formats/format), for an object one
 * element per member; null is an empty element, booleans true/false. Text
 * is escaped; characters XML 1.0 forbids are dropped. */
void open311_xml(buf *out, const char *root, const json_t *v);

/* ---- the GeoReport documents (open311.c); *out owned by the caller ---- */

/* The discovery document; endpoint_url is the absolute URL of /open311/v2. */
json_t *open311_discovery(const char *endpoint_url);
/* [{service_code, service_name, description, metadata, type, keywords, group}]:
 * the enabled categories. */
int open311_services(db *d, json_t **out, cb_error *err);
/* {service_code, attributes: [...]}; CB_ENOT_FOUND for an unknown code. */
int open311_service_definition(db *d, const char *code, json_t **out, cb_error *err);

/* GET requests: text from the query; NULL = unset. */
struct open311_filter {
    const char *service_request_id; /* comma list; overrides the rest */
    const char *service_code;       /* comma list */
    const char *start_date, *end_date; /* RFC 3339 (or epoch ms); default the 90 days up to now */
    const char *status;             /* "open", "closed" or both comma-separated */
    int64_t now;
};
#define OPEN311_LIST_MAX 1000
#define OPEN311_SPAN_MS (90LL * 24 * 3600 * 1000)

/* Reads see citizens' reports only (cases of channel citizen): other
 * channels' cases are not service requests and are never listed or found. */

/* [REQUEST...] newest first, at most OPEN311_LIST_MAX; CB_EINVALID_FIELD for
 * a bad filter. */
int open311_requests(db *d, const struct open311_filter *f, json_t **out, cb_error *err);
/* [REQUEST] of one id; CB_ENOT_FOUND. */
int open311_request(db *d, const char *id, json_t **out, cb_error *err);

/* A POST's parameters, by name (form first, then the query string). */
typedef const char *(*open311_param_fn)(void *ctx, const char *name);

/* The cases_intake body for a POST requests: {"channel": "citizen",
 * "category", "description", "lon"/"lat" or "address", "reporter"?,
 * "media"?}; attribute[code] values are checked against the service
 * definition and added to the description. CB_EMISSING_FIELD /
 * CB_EINVALID_FIELD name the parameter. */
int open311_intake_body(db *d, open311_param_fn param, void *ctx, json_t **out, cb_error *err);

/* The answer to a POST: [{service_request_id, service_notice, account_id,
 * access_token}] for the case JSON cases_intake returned; access_token (an
 * extension of the standard: the request's follow secret, shown once) and
 * account_id are null when NULL or "". */
json_t *open311_post_reply(const json_t *created, const char *account_id, const char *access_token);

#endif
