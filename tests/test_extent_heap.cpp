// The TLSF placement engine: fit, split, coalesce, grow, and a randomized run against a
// unit-by-unit reference.
#include <odma/detail/extent_heap.hpp>

#include <doctest/doctest.h>

#include <random>
#include <vector>

using odma::detail::extent_heap;

TEST_CASE("extent_heap places, fills up and coalesces") {
    extent_heap h(100, 1000);
    CHECK(h.free_units() == 1000);
    CHECK(h.largest_free() == 1000);
    const auto a = h.allocate(300);
    const auto b = h.allocate(300);
    const auto c = h.allocate(400);
    REQUIRE(a != extent_heap::no_block);
    REQUIRE(b != extent_heap::no_block);
    REQUIRE(c != extent_heap::no_block);
    CHECK(h.offset(a) == 100);  // carved from the low end
    CHECK(h.free_units() == 0);
    CHECK(h.allocate(1) == extent_heap::no_block);
    CHECK(h.check());

    h.free(a);
    h.free(c);
    CHECK(h.free_units() == 700);
    CHECK(h.largest_free() == 400);  // a and c are not neighbours
    h.free(b);                       // joins both
    CHECK(h.largest_free() == 1000);
    int blocks = 0;
    h.for_each_block([&](auto, auto, bool) { ++blocks; });
    CHECK(blocks == 1);
    CHECK(h.check());
}

TEST_CASE("extent_heap refuses zero and oversized requests") {
    extent_heap h(0, 64);
    CHECK(h.allocate(0) == extent_heap::no_block);
    CHECK(h.allocate(65) == extent_heap::no_block);
    extent_heap empty(5, 0);
    CHECK(empty.allocate(1) == extent_heap::no_block);
    CHECK(empty.check());
}

TEST_CASE("extent_heap grows a block into its free successor only") {
    extent_heap h(0, 100);
    const auto a = h.allocate(10);
    CHECK(h.room_after(a) == 90);
    CHECK(h.grow(a, 40));
    CHECK(h.size(a) == 40);
    CHECK(h.free_units() == 60);
    const auto b = h.allocate(10);  // right after a
    CHECK(h.offset(b) == 40);
    CHECK(h.room_after(a) == 0);
    CHECK_FALSE(h.grow(a, 41));
    CHECK(h.size(a) == 40);
    CHECK(h.grow(b, 60));  // takes the whole tail
    CHECK(h.free_units() == 0);
    CHECK(h.check());
}

TEST_CASE("extent_heap finds a fitting block even deep in an exact-size class") {
    // Many free blocks of one class, only the last one large enough: allocation must still
    // succeed, because a false "no memory" would turn away a request that fits.
    extent_heap h(0, 100000);
    std::vector<extent_heap::block_id> spacers, holes;
    for (int i = 0; i < 40; ++i) {
        holes.push_back(h.allocate(i == 0 ? 1031 : 1025));  // same class [1024, 1088)
        spacers.push_back(h.allocate(1));
    }
    const auto rest = h.allocate(h.free_units());
    REQUIRE(rest != extent_heap::no_block);
    for (auto b : holes)
        h.free(b);
    // holes[0] (1031 units) was freed first, so it sits last in its bin.
    const auto got = h.allocate(1030);
    REQUIRE(got != extent_heap::no_block);
    CHECK(h.size(got) == 1030);
    CHECK(h.check());
}

TEST_CASE("extent_heap matches a unit-by-unit reference under random load") {
    constexpr unsigned n = 4096;
    extent_heap h(0, n);
    std::vector<int> owner(n, -1);  // reference: which block owns each unit
    struct live_block {
        extent_heap::block_id id;
        unsigned offset, size;
    };
    std::vector<live_block> live;
    std::mt19937 rng(12345);
    auto largest_run = [&] {
        unsigned best = 0, run = 0;
        for (unsigned u = 0; u < n; ++u) {
            run = owner[u] < 0 ? run + 1 : 0;
            best = std::max(best, run);
        }
        return best;
    };
    for (int step = 0; step < 20000; ++step) {
        const int op = int(rng() % 10);
        if (op < 5) {
            const unsigned want = 1 + rng() % 200;
            const auto b = h.allocate(want);
            if (b == extent_heap::no_block) {
                CHECK(largest_run() < want);  // fails only when nothing fits
            } else {
                const unsigned off = h.offset(b);
                REQUIRE(off + want <= n);
                for (unsigned u = off; u < off + want; ++u) {
                    REQUIRE(owner[u] < 0);  // never overlaps a live block
                    owner[u] = int(b);
                }
                live.push_back({b, off, want});
            }
        } else if (op < 8 && !live.empty()) {
            const std::size_t i = rng() % live.size();
            for (unsigned u = live[i].offset; u < live[i].offset + live[i].size; ++u)
                owner[u] = -1;
            h.free(live[i].id);
            live[i] = live.back();
            live.pop_back();
        } else if (!live.empty()) {
            auto& lb = live[rng() % live.size()];
            const unsigned want = lb.size + 1 + rng() % 64;
            const unsigned room = h.room_after(lb.id);
            const bool grew = h.grow(lb.id, want);
            CHECK(grew == (lb.size + room >= want));
            if (grew) {
                for (unsigned u = lb.offset + lb.size; u < lb.offset + want; ++u) {
                    REQUIRE(owner[u] < 0);
                    owner[u] = int(lb.id);
                }
                lb.size = want;
            }
        }
        unsigned free_ref = 0;
        for (int o : owner)
            free_ref += o < 0;
        REQUIRE(h.free_units() == free_ref);
        if (step % 97 == 0) {
            REQUIRE(h.check());
            CHECK(h.largest_free() == largest_run());
        }
    }
    for (auto& lb : live)
        h.free(lb.id);
    CHECK(h.free_units() == n);
    CHECK(h.largest_free() == n);
    CHECK(h.check());
}

TEST_CASE("extent_heap shrinks a block: the cut merges with free space after it, or stands alone") {
    extent_heap h(0, 100);
    const auto a = h.allocate(40);
    const auto b = h.allocate(30);  // [40, 70); [70, 100) free
    h.shrink(b, 10);                // [50, 70) joins the free [70, 100)
    CHECK(h.size(b) == 10);
    CHECK(h.free_units() == 50);
    CHECK(h.room_after(b) == 50);
    CHECK(h.largest_free() == 50);
    h.shrink(a, 25);  // b follows a: the cut [25, 40) is a free block of its own
    CHECK(h.size(a) == 25);
    CHECK(h.room_after(a) == 15);
    CHECK(h.free_units() == 65);
    h.shrink(a, 25);  // no change
    h.shrink(a, 0);   // refused: a block keeps at least one unit
    CHECK(h.size(a) == 25);
    CHECK(h.check());
    h.free(a);
    h.free(b);
    CHECK(h.largest_free() == 100);
    CHECK(h.check());
}
