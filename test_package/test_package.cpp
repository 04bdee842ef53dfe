// The smallest real use of the packaged headers: admit, grow and release one lease.
#include <odma/odma.hpp>

#include <cstdio>

int main() {
    odma::allocator<odma::predict::constant, odma::bucket::fixed, odma::backing::host> kv{
        {.bytes_per_token = 256, .max_tokens = 256},
        {},
        odma::bucket::fixed::powers_of_two(16, 256),
        odma::backing::host{1 << 20}};
    auto lease = kv.admit({.id = 1, .prompt_tokens = 8, .max_new_tokens = 32});
    if (!lease || !kv.extend(*lease, 20) || !kv.release(*lease, 12) || !kv.check()) return 1;
    std::printf("odma %d.%d.%d test_package ok\n", ODMA_VERSION_MAJOR, ODMA_VERSION_MINOR,
                ODMA_VERSION_PATCH);
    return 0;
}
