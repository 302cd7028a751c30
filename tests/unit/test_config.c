/* Unit tests for config: defaults, file parsing, flags, the reference file. */
#include "core/config.h"
#include "core/log.h"
#include "store/wal.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char *write_temp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/cb_test_config_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

TEST(defaults_are_documented_values)
{
    struct cb_config c;
    config_defaults(&c);
    CHECK_INT(c.port, 8080);
    CHECK_STR(c.data_dir, "./data");
    CHECK_STR(c.listen, "0.0.0.0");
    CHECK_INT(c.wal_fsync, WAL_FSYNC_EVERYSEC);
    CHECK_INT(c.log_level, LOG_INFO);
    CHECK_INT(c.max_body, 16 << 20);
    CHECK_INT(c.connection_timeout, 30);
}

TEST(file_sets_options_and_skips_comments)
{
    char *p = write_temp("# comment\n\nport 9090\n  data_dir   /var/lib/cb  \nwal_fsync always\n"
                         "max_body 2M\nlog_level debug\n");
    struct cb_config c;
    cb_error e;
    config_defaults(&c);
    CHECK_INT(config_load_file(&c, p, &e), 0);
    CHECK_INT(c.port, 9090);
    CHECK_STR(c.data_dir, "/var/lib/cb");
    CHECK_INT(c.wal_fsync, WAL_FSYNC_ALWAYS);
    CHECK_INT(c.max_body, 2 << 20);
    CHECK_INT(c.log_level, LOG_DEBUG);
    unlink(p);
}

TEST(file_errors_name_the_line_and_option)
{
    struct cb_config c;
    cb_error e;
    config_defaults(&c);
    char *p = write_temp("port 9090\nwal_fsync sometimes\n");
    CHECK_INT(config_load_file(&c, p, &e), CB_ECONFIG);
    CHECK(strstr(e.message, ":2:") != NULL);
    CHECK(strstr(e.message, "always, everysec, off") != NULL);
    CHECK_STR(e.field, "wal_fsync");
    unlink(p);
    p = write_temp("colour blue\n");
    CHECK_INT(config_load_file(&c, p, &e), CB_ECONFIG);
    CHECK(strstr(e.message, "unknown option 'colour'") != NULL);
    unlink(p);
    p = write_temp("port\n");
    CHECK_INT(config_load_file(&c, p, &e), CB_ECONFIG);
    CHECK(strstr(e.message, "has no value") != NULL);
    unlink(p);
    CHECK_INT(config_load_file(&c, "/nonexistent/cb.conf", &e), CB_ECONFIG);
}

TEST(numbers_are_range_checked)
{
    struct cb_config c;
    cb_error e;
    config_defaults(&c);
    CHECK_INT(config_set(&c, "port", "70000", &e), CB_EINVALID_FIELD);
    CHECK(strstr(e.message, "outside 1..65535") != NULL);
    CHECK_INT(config_set(&c, "port", "80x", &e), CB_EINVALID_FIELD);
    CHECK_INT(config_set(&c, "max_body", "12Q", &e), CB_EINVALID_FIELD);
    CHECK_INT(config_set(&c, "max_body", "64K", &e), 0);
    CHECK_INT(c.max_body, 65536);
    CHECK_INT(config_set(&c, "max_body", "1KB", &e), 0);
    CHECK_INT(c.max_body, 1024);
    CHECK_INT(config_set(&c, "max_body", "99999999999G", &e), CB_EINVALID_FIELD);
    CHECK_INT(c.port, 8080);
}

TEST(flags_override_with_dashes_or_equals)
{
    struct cb_config c;
    cb_error e;
    config_defaults(&c);
    char *argv[] = {"--data-dir", "/tmp/x", "--port=1234", "--log_level", "warn"};
    CHECK_INT(config_apply_args(&c, 5, argv, &e), 0);
    CHECK_STR(c.data_dir, "/tmp/x");
    CHECK_INT(c.port, 1234);
    CHECK_INT(c.log_level, LOG_WARN);
    char *bad[] = {"--nope", "1"};
    CHECK_INT(config_apply_args(&c, 2, bad, &e), CB_EINVALID_FIELD);
    CHECK(strstr(e.message, "unknown flag '--nope'") != NULL);
    char *novalue[] = {"--port"};
    CHECK_INT(config_apply_args(&c, 1, novalue, &e), CB_EINVALID_FIELD);
    char *stray[] = {"serve"};
    CHECK_INT(config_apply_args(&c, 1, stray, &e), CB_EINVALID_FIELD);
    CHECK(config_is_option("max-connections"));
    CHECK(!config_is_option("max"));
}

/* The reference file, uncommented, must load and give the defaults back. */
TEST(reference_round_trips_to_defaults)
{
    char path[] = "/tmp/cb_test_ref_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w+");
    config_write_reference(f);
    rewind(f);
    char line[2048], uncommented[1 << 15] = "";
    int options = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' && line[1] != ' ' && line[1] != '\n') {
            strcat(uncommented, line + 1);
            options++;
        }
    }
    fclose(f);
    CHECK(options >= 12);
    char *p = write_temp(uncommented);
    struct cb_config fromfile, defaults;
    cb_error e;
    config_defaults(&defaults);
    config_defaults(&fromfile);
    fromfile.port = 1;
    CHECK_INT(config_load_file(&fromfile, p, &e), 0);
    CHECK(memcmp(&fromfile, &defaults, sizeof defaults) == 0);
    unlink(p);
    unlink(path);
}

TEST_MAIN(defaults_are_documented_values, file_sets_options_and_skips_comments,
          file_errors_name_the_line_and_option, numbers_are_range_checked,
          flags_override_with_dashes_or_equals, reference_round_trips_to_defaults)
