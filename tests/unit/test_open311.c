/* test_open311 — the parts of the Open311 door that need no server: the
 * form-urlencoded parser of POST bodies and the XML writer (escaping, the
 * container/item names, null and boolean values). The documents themselves
 * are tested over HTTP in tests/integration/test_open311.py. */
#include "open311/open311.h"
#include "test.h"

static struct open311_form parse_ok(const char *body)
{
    struct open311_form f;
    cb_error err;
    int rc = open311_form_parse(body, strlen(body), &f, &err);
    if (rc != 0)
        fprintf(stderr, "  %s: %s\n", body, err.message);
    CHECK_INT(rc, 0);
    return f;
}

TEST(test_form_decodes)
{
    struct open311_form f = parse_ok("api_key=cb_1_x&service_code=01001&description=%E4%BA%95%E7%9B%96+%E4%B8%A2%E4%BA%86"
                                     "&attribute%5Bcondition%5D=missing&flag&&lat=35.24&lat=99");
    CHECK_INT(f.n, 7); /* the empty pair between && is skipped */
    CHECK_STR(open311_form_get(&f, "api_key"), "cb_1_x");
    CHECK_STR(open311_form_get(&f, "description"), "井盖 丢了");
    CHECK_STR(open311_form_get(&f, "attribute[condition]"), "missing");
    CHECK_STR(open311_form_get(&f, "flag"), "");    /* no '=': an empty value */
    CHECK_STR(open311_form_get(&f, "lat"), "35.24"); /* the first of a repeated name */
    CHECK(open311_form_get(&f, "long") == NULL);
    open311_form_free(&f);
    f = parse_ok("");
    CHECK_INT(f.n, 0);
    open311_form_free(&f);
    f = parse_ok("a=%41%62c%2B%25");
    CHECK_STR(open311_form_get(&f, "a"), "Abc+%");
    open311_form_free(&f);
}

TEST(test_form_refuses)
{
    static const char *const bad[] = {"a=%", "a=%4", "a=%GG", "a=%00", "%ZZ=1", "a=%C3%28", "a=%ED%A0%80", "a=%C0%AF"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct open311_form f;
        cb_error err;
        CHECK_INT(open311_form_parse(bad[i], strlen(bad[i]), &f, &err), CB_EINVALID_FIELD);
        CHECK_INT(f.n, 0);
        open311_form_free(&f); /* safe after a failure */
    }
    buf many = BUF_INIT;
    for (int i = 0; i <= OPEN311_FORM_MAX_PAIRS; i++)
        buf_printf(&many, "k%d=v&", i);
    struct open311_form f;
    cb_error err;
    CHECK_INT(open311_form_parse(many.data, many.len, &f, &err), CB_EINVALID_FIELD);
    CHECK(strstr(err.message, "too many pairs") != NULL);
    open311_form_free(&f);
    buf_free(&many);
}

TEST(test_xml)
{
    json_t *v = json_pack("[{s:s, s:b, s:n, s:i, s:[{s:s}], s:s}]", "service_code", "01<&>\"'", "metadata", 1,
                          "account_id", "order", 3, "values", "key", "k", "bell", "a\x01" "b");
    buf out = BUF_INIT;
    open311_xml(&out, "services", v);
    CHECK_STR(out.data, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                        "<services><service><service_code>01&lt;&amp;&gt;&quot;&apos;</service_code>"
                        "<metadata>true</metadata><account_id/><order>3</order>"
                        "<values><value><key>k</key></value></values><bell>ab</bell></service></services>\n");
    buf_free(&out);
    json_decref(v);
    v = json_pack("[{s:i, s:s}]", "code", 403, "description", "invalid api_key");
    open311_xml(&out, "errors", v);
    CHECK(strstr(out.data, "<errors><error><code>403</code><description>invalid api_key</description></error></errors>"));
    buf_free(&out);
    json_decref(v);
}

TEST_MAIN(test_form_decodes, test_form_refuses, test_xml)
