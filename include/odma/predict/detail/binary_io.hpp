// odma/predict/detail/binary_io.hpp - small versioned binary files: magic, version, size,
// checksum. The container of predict::ngram's model file.
//
// Layout of every file (all integers little-endian, independent of the host):
//
//   offset  size  field
//        0     8  magic: 8 ASCII bytes naming the content, e.g. "ODMA-NGR"
//        8     4  format version
//       12     4  reserved, 0
//       16     8  payload size in bytes
//       24     8  FNV-1a 64 checksum of the payload
//       32     n  payload
//
// Errors are std::system_error carrying odma::errc::io_error (cannot open, read or write) or
// odma::errc::bad_format (anything wrong with the content); the message names the file.
//
// Files go through <cstdio> rather than <fstream>: the streams would add about 5,000
// preprocessed lines to every includer of a predictor, for two whole-file transfers.
#pragma once

#include <odma/errc.hpp>
#include <odma/support/hash.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace odma::predict::detail {

inline constexpr std::size_t file_header_bytes = 32;

[[noreturn]] inline void throw_file_error(errc code, const std::string& path,
                                          const std::string& what) {
    throw std::system_error(make_error_code(code), path + ": " + what);
}

/// Appends little-endian values to a byte buffer.
class byte_writer {
public:
    void u32(std::uint32_t v) { put(v); }
    void u64(std::uint64_t v) { put(v); }
    void f32(float v) { u32(std::bit_cast<std::uint32_t>(v)); }
    void f64(double v) { u64(std::bit_cast<std::uint64_t>(v)); }
    const std::vector<unsigned char>& bytes() const noexcept { return bytes_; }

private:
    template <class T>
    void put(T v) {
        for (std::size_t i = 0; i < sizeof(T); ++i)
            bytes_.push_back(static_cast<unsigned char>(v >> (8 * i)));
    }

    std::vector<unsigned char> bytes_;
};

/// Reads little-endian values from a payload; running past the end is a bad_format error.
class byte_reader {
public:
    byte_reader(const std::vector<unsigned char>& bytes, std::string path)
        : bytes_(bytes), path_(std::move(path)) {}

    std::uint32_t u32() { return get<std::uint32_t>(); }
    std::uint64_t u64() { return get<std::uint64_t>(); }
    float f32() { return std::bit_cast<float>(u32()); }
    double f64() { return std::bit_cast<double>(u64()); }

    std::size_t remaining() const noexcept { return bytes_.size() - pos_; }
    /// Throws bad_format with `what` (the payload is inconsistent).
    [[noreturn]] void fail(const std::string& what) const {
        throw_file_error(errc::bad_format, path_, what);
    }
    /// The payload must be fully consumed: trailing bytes mean a writer/reader mismatch.
    void expect_end() const {
        if (remaining() != 0)
            fail(std::to_string(remaining()) + " unexpected bytes after the model data");
    }

private:
    template <class T>
    T get() {
        if (remaining() < sizeof(T)) fail("payload ends early (truncated or inconsistent)");
        T v = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i)
            v |= T(bytes_[pos_++]) << (8 * i);
        return v;
    }

    const std::vector<unsigned char>& bytes_;
    std::string path_;
    std::size_t pos_ = 0;
};

inline std::uint64_t checksum(const std::vector<unsigned char>& bytes) noexcept {
    return support::fnv1a(
        std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

/// An open std::FILE, closed when it goes out of scope (also when an exception passes).
class file_handle {
public:
    file_handle(const std::string& path, const char* mode) noexcept
        : file_(std::fopen(path.c_str(), mode)) {}
    file_handle(const file_handle&) = delete;
    file_handle& operator=(const file_handle&) = delete;
    ~file_handle() {
        if (file_) std::fclose(file_);
    }

    explicit operator bool() const noexcept { return file_ != nullptr; }
    std::FILE* get() const noexcept { return file_; }
    /// Closes the file now; false if that failed (for a written file: the last bytes may not
    /// have reached it).
    bool close() noexcept {
        std::FILE* f = file_;
        file_ = nullptr;
        return std::fclose(f) == 0;
    }

private:
    std::FILE* file_;
};

/// Writes header + payload to `path`, through a temporary file renamed into place, so a reader
/// never sees a half-written file.
inline void write_file(const std::string& path, std::string_view magic, std::uint32_t version,
                       const std::vector<unsigned char>& payload) {
    byte_writer header;
    std::uint64_t m = 0;
    for (std::size_t i = 0; i < 8; ++i)
        m |= std::uint64_t(i < magic.size() ? static_cast<unsigned char>(magic[i]) : 0) << (8 * i);
    header.u64(m);
    header.u32(version);
    header.u32(0);
    header.u64(payload.size());
    header.u64(checksum(payload));
    const std::string tmp = path + ".tmp";
    {
        file_handle out(tmp, "wb");
        if (!out) throw_file_error(errc::io_error, path, "cannot open '" + tmp + "' for writing");
        const auto& h = header.bytes();
        bool ok = std::fwrite(h.data(), 1, h.size(), out.get()) == h.size();
        ok = ok && std::fwrite(payload.data(), 1, payload.size(), out.get()) == payload.size();
        ok = out.close() && ok;  // close even after a failed write; it flushes
        if (!ok) {
            std::remove(tmp.c_str());
            throw_file_error(errc::io_error, path, "write failed");
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw_file_error(errc::io_error, path, "cannot replace the file");
    }
}

/// Reads `path`, checks its magic, version, size and checksum, and returns the payload.
inline std::vector<unsigned char> read_file(const std::string& path, std::string_view magic,
                                            std::uint32_t version) {
    std::vector<unsigned char> all;
    {
        file_handle in(path, "rb");
        if (!in) throw_file_error(errc::io_error, path, "cannot open for reading");
        unsigned char chunk[1 << 14];
        std::size_t got = 0;
        while ((got = std::fread(chunk, 1, sizeof chunk, in.get())) > 0)
            all.insert(all.end(), chunk, chunk + got);
        if (std::ferror(in.get())) throw_file_error(errc::io_error, path, "read failed");
    }
    if (all.size() < file_header_bytes)
        throw_file_error(errc::bad_format, path,
                         "too short (" + std::to_string(all.size()) + " bytes) for an odma file");
    if (std::string_view(reinterpret_cast<const char*>(all.data()), magic.size()) != magic)
        throw_file_error(errc::bad_format, path,
                         "not an odma '" + std::string(magic) + "' file (wrong magic bytes)");
    const std::vector<unsigned char> head(all.begin(), all.begin() + file_header_bytes);
    byte_reader h(head, path);
    (void)h.u64();
    const std::uint32_t v = h.u32();
    (void)h.u32();
    const std::uint64_t size = h.u64();
    const std::uint64_t sum = h.u64();
    if (v != version)
        throw_file_error(errc::bad_format, path,
                         "format version " + std::to_string(v) + ", this build reads version " +
                             std::to_string(version));
    if (size != all.size() - file_header_bytes)
        throw_file_error(errc::bad_format, path,
                         "header announces " + std::to_string(size) + " payload bytes, file has " +
                             std::to_string(all.size() - file_header_bytes) + " (truncated?)");
    std::vector<unsigned char> payload(all.begin() + file_header_bytes, all.end());
    if (checksum(payload) != sum)
        throw_file_error(errc::bad_format, path, "checksum mismatch (the file is corrupt)");
    return payload;
}

}  // namespace odma::predict::detail
