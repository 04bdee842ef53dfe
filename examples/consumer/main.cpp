// Builds against an installed odma (find_package) and proves the headers work from there.
#include <odma/odma.hpp>

#include <cstdio>

int main() {
    odma::allocator<odma::predict::constant, odma::bucket::fixed, odma::backing::host> kv{
        {.bytes_per_token = 1024, .max_tokens = 512},
        {},
        odma::bucket::fixed::powers_of_two(32, 512),
        odma::backing::host{4 << 20}};
    auto l = kv.admit({.id = 1, .prompt_tokens = 16, .max_new_tokens = 64});
    if (!l || !kv.extend(*l, 40) || !kv.release(*l, 24) || !kv.check()) return 1;
    std::printf("odma %d.%d.%d consumer ok\n", ODMA_VERSION_MAJOR, ODMA_VERSION_MINOR,
                ODMA_VERSION_PATCH);
    return 0;
}
