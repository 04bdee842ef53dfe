/* c99_smoke.c - a C99 program that uses odma through odma_c.h only: admits, extends and
 * releases, writes and reads KV bytes, and checks that errors come back as statuses.
 * Built by ctest (-std=c99 -Wall -Wextra -Werror -pedantic) and by the install test with
 * `gcc -std=c99 $(pkg-config --cflags --libs odma_c)`. Prints "odma_c ok" and exits 0. */
#include <odma_c.h>

#include <stdio.h>
#include <string.h>

static int failures = 0;

#define EXPECT(cond)                                                                         \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "c99_smoke.c:%d: %s failed (last error: %s)\n", __LINE__, #cond, \
                    odma_last_error());                                                      \
            ++failures;                                                                      \
        }                                                                                    \
    } while (0)

int main(void) {
    odma_config config;
    odma_allocator* kv = NULL;
    odma_request request;
    odma_lease lease, stale;
    odma_growth growth = ODMA_GROWTH_UNCHANGED;
    odma_stats stats;
    odma_run runs[4];
    size_t count = 0;
    void* data = NULL;
    unsigned char* bytes;
    size_t i;

    odma_config_init(&config);
    config.arena_bytes = (size_t)4096 * 64;
    config.bytes_per_token = 64;
    config.max_tokens = 1024;
    config.buckets = ODMA_BUCKETS_UNIFORM;
    config.bucket_count = 8;

    /* A bad configuration names its field. */
    config.bytes_per_token = 0;
    EXPECT(odma_create(&config, &kv) == ODMA_INVALID_ARGUMENT);
    EXPECT(kv == NULL);
    EXPECT(strstr(odma_last_error(), "bytes_per_token") != NULL);
    config.bytes_per_token = 64;

    EXPECT(odma_create(&config, &kv) == ODMA_OK);
    if (!kv) return 1;

    memset(&request, 0, sizeof request);
    request.id = 1;
    request.prompt_tokens = 100;
    request.max_new_tokens = 50;
    request.tag = odma_tag_of("chat", 4);
    memset(&lease, 0, sizeof lease);
    EXPECT(odma_admit(kv, &request, &lease) == ODMA_OK);

    /* Write the prompt's KV through the pointer, grow, read it back. */
    EXPECT(odma_data(kv, lease, 0, &data) == ODMA_OK);
    bytes = (unsigned char*)data;
    for (i = 0; bytes && i < 100 * 64; ++i)
        bytes[i] = (unsigned char)(i % 251);
    EXPECT(odma_extend(kv, lease, 140, &growth) == ODMA_OK);
    EXPECT(growth == ODMA_GROWTH_UNCHANGED || growth == ODMA_GROWTH_IN_PLACE);
    EXPECT(odma_runs(kv, lease, 0, runs, 4, &count) == ODMA_OK);
    EXPECT(count == 1 && runs[0].bytes == 140 * 64);
    EXPECT(odma_data(kv, lease, 0, &data) == ODMA_OK);
    bytes = (unsigned char*)data;
    for (i = 0; bytes && i < 100 * 64; ++i)
        if (bytes[i] != (unsigned char)(i % 251)) {
            EXPECT(bytes[i] == (unsigned char)(i % 251));
            break;
        }
    EXPECT(odma_extend(kv, lease, 0, NULL) == ODMA_INVALID_REQUEST);
    EXPECT(odma_get_stats(kv, &stats) == ODMA_OK);
    EXPECT(stats.live_leases == 1 && stats.used_bytes == 140 * 64);
    EXPECT(odma_check(kv) == ODMA_OK);

    stale = lease;
    EXPECT(odma_release(kv, lease, 40) == ODMA_OK);
    EXPECT(odma_release(kv, stale, 40) == ODMA_INVALID_LEASE);
    EXPECT(odma_extend(kv, stale, 150, NULL) == ODMA_INVALID_LEASE);
    EXPECT(strcmp(odma_status_name(ODMA_INVALID_LEASE), "invalid_lease") == 0);
    EXPECT(odma_admit(kv, NULL, &lease) == ODMA_INVALID_ARGUMENT);
    EXPECT(odma_get_stats(kv, &stats) == ODMA_OK);
    EXPECT(stats.live_leases == 0 && stats.releases == 1);
    EXPECT(odma_check(kv) == ODMA_OK);

    odma_destroy(kv);
    EXPECT(odma_check(NULL) == ODMA_INVALID_ARGUMENT);
    if (failures) return 1;
    printf("odma_c ok\n");
    return 0;
}
