// Test-only backings and policies used by several test files.
#pragma once

#include <odma/backing/host.hpp>
#include <odma/prediction.hpp>
#include <odma/request.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

namespace odma_test {

/// A host arena that implements the optional commit/decommit capability and counts, per byte,
/// how many times it is committed. Lets tests verify the allocator commits exactly the bytes
/// leases hold, and can be told to refuse commits.
class counting_commit_backing {
public:
    using pointer = std::byte*;
    explicit counting_commit_backing(std::size_t bytes) : arena_(bytes), refs_(bytes, 0) {}

    std::size_t capacity() const noexcept { return arena_.capacity(); }
    pointer address(std::size_t offset) const noexcept { return arena_.address(offset); }
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) { arena_.copy(dst, src, bytes); }

    bool commit(std::size_t offset, std::size_t bytes) {
        ++commit_calls;
        if (refuse_commits || commit_calls > refuse_after_calls) return false;
        for (std::size_t i = offset; i < offset + bytes; ++i) {
            if (refs_.at(i) != 0) throw std::logic_error("byte committed twice");
            refs_[i] = 1;
        }
        committed += bytes;
        return true;
    }
    void decommit(std::size_t offset, std::size_t bytes) {
        for (std::size_t i = offset; i < offset + bytes; ++i) {
            if (refs_.at(i) != 1) throw std::logic_error("decommit of a byte never committed");
            refs_[i] = 0;
        }
        committed -= bytes;
    }

    bool refuse_commits = false;
    /// Refuse every commit after this many calls (a device running out part-way).
    std::size_t refuse_after_calls = std::numeric_limits<std::size_t>::max();
    std::size_t committed = 0;
    std::size_t commit_calls = 0;

private:
    odma::backing::host arena_;
    std::vector<std::uint8_t> refs_;
};

/// A host arena whose copy() throws on demand: a device copy that fails mid-migration.
class throwing_copy_backing {
public:
    using pointer = std::byte*;
    explicit throwing_copy_backing(std::size_t bytes) : arena_(bytes) {}
    std::size_t capacity() const noexcept { return arena_.capacity(); }
    pointer address(std::size_t offset) const noexcept { return arena_.address(offset); }
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) {
        if (throw_on_copy) throw std::runtime_error("injected copy failure");
        arena_.copy(dst, src, bytes);
    }
    bool throw_on_copy = false;

private:
    odma::backing::host arena_;
};

/// Predicts a fixed number of new tokens, and throws from predict() or observe() on demand.
struct scripted_predictor {
    std::uint32_t tokens = 16;
    bool throw_in_predict = false;
    bool throw_in_observe = false;
    std::uint32_t observed = 0;
    std::uint32_t last_observed = 0;

    odma::prediction predict(const odma::request&) const {
        if (throw_in_predict) throw std::runtime_error("injected predictor failure");
        return odma::prediction::exact(tokens);
    }
    void observe(const odma::request&, std::uint32_t actual) {
        if (throw_in_observe) throw std::runtime_error("injected observe failure");
        ++observed;
        last_observed = actual;
    }
};

}  // namespace odma_test
