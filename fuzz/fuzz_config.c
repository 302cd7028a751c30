/* fuzz_config — the config file parser must reject or accept any bytes
 * without crashing, and an accepted file must leave every option in range. */
#include "core/config.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cb_config cfg;
    cb_error err;
    config_defaults(&cfg);
    if (config_load_text(&cfg, "fuzz.conf", (const char *)data, size, &err) == 0) {
        assert(cfg.port >= 1 && cfg.port <= 65535);
        assert(cfg.max_body >= 1024);
        assert(memchr(cfg.data_dir, '\0', sizeof cfg.data_dir) != NULL);
    } else {
        assert(err.code == CB_ECONFIG);
        assert(memchr(err.message, '\0', sizeof err.message) != NULL);
    }
    return 0;
}
