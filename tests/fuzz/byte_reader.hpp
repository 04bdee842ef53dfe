// tests/fuzz/byte_reader.hpp - how both fuzz targets read their input.
#pragma once

#include <cstddef>
#include <cstdint>

namespace odma_fuzz {

/// Reads the input front to back; past the end every read is 0, so any input is complete.
class byte_reader {
public:
    byte_reader(const std::uint8_t* data, std::size_t size) : p_(data), left_(size) {}
    bool empty() const noexcept { return left_ == 0; }
    std::uint8_t u8() noexcept {
        if (left_ == 0) return 0;
        --left_;
        return *p_++;
    }
    std::uint16_t u16() noexcept { return std::uint16_t(u8() | (u8() << 8)); }

private:
    const std::uint8_t* p_;
    std::size_t left_;
};

}  // namespace odma_fuzz
