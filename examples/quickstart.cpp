// The README's usage example, complete. Builds and runs in CI.
#include <odma/odma.hpp>

#include <cstdio>
#include <cstring>

int main() {
    using kv_allocator = odma::allocator<odma::predict::constant,  // Predictor
                                         odma::bucket::fixed,      // BucketPolicy
                                         odma::backing::host>;     // Backing

    odma::config cfg{.bytes_per_token = 57344, .max_tokens = 4096, .safety_pool_fraction = 0.10};
    kv_allocator kv{cfg, odma::predict::constant{}, odma::bucket::fixed::uniform(8, 4096),
                    odma::backing::host{6ull << 30}};

    odma::request req{.id = 7, .prompt_tokens = 120, .max_new_tokens = 1024, .prompt_text = "..."};
    odma::result<odma::lease> r = kv.admit(req);  // predicts, picks a bucket, places a region
    if (!r) {
        std::fprintf(stderr, "admit failed: %s\n", odma::to_string(r.error()).data());
        return 1;
    }
    odma::lease l = *r;
    std::byte* base = kv.data(l);  // token i lives at base + i * bytes_per_token
    std::memset(base, 0, req.prompt_tokens * cfg.bytes_per_token);  // "prefill"

    std::uint32_t generated = 0;
    for (; generated < 200; ++generated) {  // decode: one token per step
        auto g = kv.extend(l, req.prompt_tokens + generated + 1);
        if (!g) {  // no_memory: the lease is still valid at its old size; preempt or wait
            std::fprintf(stderr, "extend failed: %s\n", odma::to_string(g.error()).data());
            break;
        }
        if (*g == odma::growth::migrated) base = kv.data(l);  // the region moved
    }
    kv.release(l, generated);  // frees, and teaches the policies the true length

    const odma::stats& s = kv.stats();
    std::printf("admitted %llu, released %llu, migrations %llu, peak used %.1f MiB of %.1f GiB\n",
                (unsigned long long)s.admissions, (unsigned long long)s.releases,
                (unsigned long long)s.migrations, s.peak_used_bytes / 1048576.0,
                s.arena_bytes / 1073741824.0);
    return kv.check() ? 0 : 2;
}
