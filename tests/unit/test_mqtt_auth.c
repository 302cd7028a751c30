/* Unit tests for mqtt_auth: the password hash against mosquitto_passwd's
 * output, and the passwd/acl/devices files through set, replace, remove and
 * batched edits. The real broker accepting them is tests/integration/test_mqtt.py. */
#include "mqtt/mqtt.h"
#include "mqtt/mqtt_auth.h"

#include "test.h"

#include <sodium.h>
#include <stdlib.h>
#include <unistd.h>

#define TOKEN1 "cbd_00000001_0123456789abcdef0123456789abcdef"
#define TOKEN1B "cbd_00000001_fedcba9876543210fedcba9876543210"
#define TOKEN2 "cbd_00000002_00112233445566778899aabbccddeeff"

static char *slurp(const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/mosquitto/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return strdup(text);
}

static void setup(struct cb_config *cfg, char dir[64])
{
    strcpy(dir, "/tmp/cb_test_mqtt_XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    config_defaults(cfg);
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", dir);
}

static void teardown(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

/* The user's line of passwd, recomputed from its salt and the token. */
static int line_verifies(const char *passwd, const char *user, const char *token)
{
    char key[80];
    snprintf(key, sizeof key, "\n%s:$7$101$", user);
    char *text = malloc(strlen(passwd) + 2);
    sprintf(text, "\n%s", passwd);
    const char *p = strstr(text, key);
    int ok = 0;
    if (p) {
        const char *salt64 = p + strlen(key);
        unsigned char salt[12];
        size_t len = 0;
        char line[256], want[256];
        snprintf(line, sizeof line, "%.*s", (int)strcspn(p + 1, "\n"), p + 1);
        if (sodium_base642bin(salt, sizeof salt, salt64, strcspn(salt64, "$"), NULL, &len, NULL,
                              sodium_base64_VARIANT_ORIGINAL) == 0 && len == 12) {
            char hash[200];
            mqtt_auth_hash(token, salt, hash, sizeof hash);
            snprintf(want, sizeof want, "%s:%s", user, hash);
            ok = strcmp(line, want) == 0;
        }
    }
    free(text);
    return ok;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* mosquitto_passwd -b pw dev1 secret wrote this line (salt and all). */
TEST(hash_matches_mosquitto_passwd)
{
    unsigned char salt[12];
    size_t len;
    CHECK_INT(sodium_base642bin(salt, sizeof salt, "e8OuxydK5bduYGjq", 16, NULL, &len, NULL,
                                sodium_base64_VARIANT_ORIGINAL), 0);
    char out[200];
    mqtt_auth_hash("secret", salt, out, sizeof out);
    CHECK_STR(out, "$7$101$e8OuxydK5bduYGjq$rX+J97/XOuZB/KP9t/Qy+EP+ttbzCCthBPWHeNBRj76tgvvtAjuijb5d/"
                   "h26NqneBHGTDGJ0aTCy5kMeP3+vaA==");
}

TEST(set_writes_passwd_acl_and_service_account)
{
    struct cb_config cfg;
    char dir[64];
    setup(&cfg, dir);
    cb_error e;
    CHECK_INT(mqtt_auth_set(&cfg, "urn:ngsi-ld:AirQualityObserved:jz-0001", TOKEN1, &e), 0);
    char *passwd = slurp(dir, "passwd"), *acl = slurp(dir, "acl"), *pw = slurp(dir, "citybrain.password");
    CHECK(strlen(pw) == 33); /* 24 random bytes in base64, a newline */
    pw[strcspn(pw, "\n")] = '\0';
    CHECK(line_verifies(passwd, "citybrain", pw));
    CHECK(line_verifies(passwd, "cbd_00000001", TOKEN1));
    CHECK(strstr(acl, "user citybrain\ntopic read city/+/telemetry\n") != NULL);
    CHECK(strstr(acl, "user cbd_00000001\ntopic write city/urn:ngsi-ld:AirQualityObserved:jz-0001/telemetry\n"));
    /* The service password is made once. */
    char password[MQTT_AUTH_PASSWORD_MAX];
    CHECK_INT(mqtt_auth_service(&cfg, password, &e), 0);
    CHECK_STR(password, pw);
    free(passwd);
    free(acl);
    free(pw);
    teardown(dir);
}

TEST(replace_and_remove_keep_other_users)
{
    struct cb_config cfg;
    char dir[64];
    setup(&cfg, dir);
    cb_error e;
    CHECK_INT(mqtt_auth_set(&cfg, "dev-1", TOKEN1, &e), 0);
    CHECK_INT(mqtt_auth_set(&cfg, "dev-2", TOKEN2, &e), 0);
    char path[1200];
    snprintf(path, sizeof path, "%s/mosquitto/passwd", dir);
    FILE *f = fopen(path, "a");
    fputs("operator:$7$101$c2FsdHNhbHRzYWx0$aGFzaA==\n", f); /* added by hand */
    fclose(f);
    CHECK_INT(mqtt_auth_set(&cfg, "dev-1", TOKEN1B, &e), 0);
    char *passwd = slurp(dir, "passwd");
    CHECK_INT(count(passwd, "cbd_00000001:"), 1);
    CHECK(line_verifies(passwd, "cbd_00000001", TOKEN1B));
    CHECK(line_verifies(passwd, "cbd_00000002", TOKEN2));
    CHECK(strstr(passwd, "operator:$7$101$c2FsdHNhbHRzYWx0$aGFzaA==\n") != NULL);
    free(passwd);
    CHECK_INT(mqtt_auth_remove(&cfg, "dev-1", &e), 0);
    CHECK_INT(mqtt_auth_remove(&cfg, "never-a-device", &e), 0);
    passwd = slurp(dir, "passwd");
    char *acl = slurp(dir, "acl"), *devices = slurp(dir, "devices");
    CHECK(strstr(passwd, "cbd_00000001:") == NULL);
    CHECK(strstr(acl, "dev-1") == NULL);
    CHECK(strstr(acl, "user cbd_00000002\ntopic write city/dev-2/telemetry\n") != NULL);
    CHECK(strstr(passwd, "operator:") != NULL);
    CHECK_INT(count(devices, "\n"), 1);
    free(passwd);
    free(acl);
    free(devices);
    teardown(dir);
}

/* Many changes, one rewrite; the last change of an entity wins, and a user
 * reused by another entity (a recycled entity number) moves to it. */
TEST(batched_edit_settles_changes)
{
    struct cb_config cfg;
    char dir[64];
    setup(&cfg, dir);
    cb_error e;
    mqtt_auth *a;
    CHECK_INT(mqtt_auth_begin(&cfg, &a, &e), 0);
    CHECK_INT(mqtt_auth_put(a, "a", TOKEN1, &e), 0);
    CHECK_INT(mqtt_auth_put(a, "b", TOKEN2, &e), 0);
    CHECK_INT(mqtt_auth_drop(a, "b", &e), 0);
    CHECK_INT(mqtt_auth_put(a, "c", TOKEN1B, &e), 0);
    CHECK_INT(mqtt_auth_commit(a, &e), 0);
    char *passwd = slurp(dir, "passwd"), *devices = slurp(dir, "devices");
    CHECK_INT(count(devices, "\n"), 1);
    CHECK(strncmp(devices, "c cbd_00000001 $7$", 18) == 0);
    CHECK(line_verifies(passwd, "cbd_00000001", TOKEN1B));
    CHECK(strstr(passwd, "cbd_00000002") == NULL);
    free(passwd);
    free(devices);
    teardown(dir);
}

TEST(bad_input_is_refused)
{
    struct cb_config cfg;
    char dir[64];
    setup(&cfg, dir);
    cb_error e;
    mqtt_auth *a;
    CHECK_INT(mqtt_auth_begin(&cfg, &a, &e), 0);
    CHECK_INT(mqtt_auth_put(a, "dev", "no-underscore", &e), CB_EINVALID_FIELD);
    CHECK_INT(mqtt_auth_put(a, "dev", "_secret", &e), CB_EINVALID_FIELD);
    CHECK_INT(mqtt_auth_put(a, "dev", "cbd_1_", &e), CB_EINVALID_FIELD);
    CHECK_INT(mqtt_auth_put(a, "a/b", TOKEN1, &e), CB_EINVALID_FIELD);
    CHECK_INT(mqtt_auth_put(a, "a+b", TOKEN1, &e), CB_EINVALID_FIELD);
    CHECK_INT(mqtt_auth_put(a, "has space", TOKEN1, &e), CB_EINVALID_FIELD);
    CHECK_INT(mqtt_auth_put(a, "x", "citybrain_secret", &e), CB_EINVALID_FIELD); /* the service user */
    CHECK_INT(mqtt_auth_put(a, "x", "a:b_secret", &e), CB_EINVALID_FIELD);
    mqtt_auth_abort(a);
    char password[MQTT_AUTH_PASSWORD_MAX];
    CHECK_INT(mqtt_auth_service(&cfg, password, &e), 0); /* no device yet */
    /* A named password file that is missing is a configuration error. */
    snprintf(cfg.mqtt_password_file, sizeof cfg.mqtt_password_file, "%s/nope", dir);
    CHECK_INT(mqtt_auth_service(&cfg, password, &e), CB_ECONFIG);
    teardown(dir);
}

/* A pid file naming something that is not a mosquitto (here: this test) must
 * not get a SIGHUP, which would end it. */
TEST(stale_pid_file_is_not_signalled)
{
    struct cb_config cfg;
    char dir[64];
    setup(&cfg, dir);
    snprintf(cfg.mqtt_broker_pid_file, sizeof cfg.mqtt_broker_pid_file, "%s/pid", dir);
    FILE *f = fopen(cfg.mqtt_broker_pid_file, "w");
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
    cb_error e;
    CHECK_INT(mqtt_auth_set(&cfg, "dev-1", TOKEN1, &e), 0);
    teardown(dir);
}

TEST(topic_names_the_entity)
{
    char id[MQTT_TOPIC_ID_MAX + 1];
    const char *ok = "city/urn:ngsi-ld:ParkingSpot:jz-7/telemetry";
    CHECK_INT(mqtt_topic_entity(ok, strlen(ok), id), 0);
    CHECK_STR(id, "urn:ngsi-ld:ParkingSpot:jz-7");
    const char *bad[] = {"city//telemetry", "city/a/b/telemetry", "city/a/telemetryx", "cityx/a/telemetry",
                         "city/a", "city/telemetry", "city/a b/telemetry", "city/+/telemetry", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT(mqtt_topic_entity(bad[i], strlen(bad[i]), id), CB_EINVALID_FIELD);
    char longer[200] = "city/";
    memset(longer + 5, 'x', 129);
    strcpy(longer + 134, "/telemetry");
    CHECK_INT(mqtt_topic_entity(longer, strlen(longer), id), CB_EINVALID_FIELD);
    longer[133] = '\0';
    strcat(longer, "/telemetry"); /* 128 characters: the longest id */
    CHECK_INT(mqtt_topic_entity(longer, strlen(longer), id), 0);
}

TEST_MAIN(hash_matches_mosquitto_passwd, set_writes_passwd_acl_and_service_account,
          replace_and_remove_keep_other_users, batched_edit_settles_changes, bad_input_is_refused,
          stale_pid_file_is_not_signalled, topic_names_the_entity)
