// odma_internal/table.hpp - aligned text tables and their JSON twin, for odma's tools.
//
// A table is a header and rows of cells; each cell keeps its number (for JSON) and its text
// (for people). print() aligns columns (numbers right, text left); to_json() writes an array of
// objects keyed by the header.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

namespace odma::tools {

class table {
public:
    struct cell {
        std::string text;
        double number = 0.0;
        bool is_number = false;
    };

    explicit table(std::vector<std::string> header) : header_(std::move(header)) {}

    table& row() {
        rows_.emplace_back();
        return *this;
    }
    table& add(std::string text) {
        rows_.back().push_back({std::move(text), 0.0, false});
        return *this;
    }
    /// A number shown with `decimals` digits after the point.
    table& add(double value, int decimals = 2) {
        char buf[64];
        if (std::isfinite(value))
            std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
        else
            std::snprintf(buf, sizeof buf, "-");
        rows_.back().push_back({buf, value, true});
        return *this;
    }
    /// A number shown as a percentage (value 0.5 -> "50.00%").
    table& add_percent(double fraction, int decimals = 2) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.*f%%", decimals, 100.0 * fraction);
        rows_.back().push_back({buf, fraction, true});
        return *this;
    }

    void print(std::ostream& out) const {
        std::vector<std::size_t> width(header_.size());
        for (std::size_t c = 0; c < header_.size(); ++c)
            width[c] = header_[c].size();
        for (const auto& r : rows_)
            for (std::size_t c = 0; c < r.size() && c < width.size(); ++c)
                width[c] = std::max(width[c], r[c].text.size());
        auto line = [&](auto&& text_of, auto&& right_of) {
            for (std::size_t c = 0; c < header_.size(); ++c) {
                const std::string t = text_of(c);
                const std::string pad(width[c] - std::min(width[c], t.size()), ' ');
                out << (c ? "  " : "") << (right_of(c) ? pad + t : t + pad);
            }
            out << '\n';
        };
        // A header sits over its column the way the column's numbers do.
        std::vector<bool> numeric(header_.size(), !rows_.empty());
        for (const auto& r : rows_)
            for (std::size_t c = 0; c < numeric.size(); ++c)
                numeric[c] = numeric[c] && c < r.size() && r[c].is_number;
        line([&](std::size_t c) { return header_[c]; },
             [&](std::size_t c) { return bool(numeric[c]); });
        std::size_t total = 0;
        for (auto w : width)
            total += w;
        out << std::string(total + 2 * (header_.size() - 1), '-') << '\n';
        for (const auto& r : rows_)
            line([&](std::size_t c) { return c < r.size() ? r[c].text : std::string(); },
                 [&](std::size_t c) { return c < r.size() && r[c].is_number; });
    }

    void to_json(std::ostream& out, int indent = 2) const {
        const std::string pad(indent, ' ');
        out << "[";
        for (std::size_t i = 0; i < rows_.size(); ++i) {
            out << (i ? ",\n" : "\n") << pad << "{";
            for (std::size_t c = 0; c < header_.size() && c < rows_[i].size(); ++c) {
                out << (c ? ", " : "") << json_string(header_[c]) << ": ";
                const auto& cl = rows_[i][c];
                if (cl.is_number && std::isfinite(cl.number)) {
                    char buf[64];
                    std::snprintf(buf, sizeof buf, "%.10g", cl.number);
                    out << buf;
                } else if (cl.is_number) {
                    out << "null";
                } else {
                    out << json_string(cl.text);
                }
            }
            out << "}";
        }
        out << "\n]";
    }

    /// `s` as a JSON string literal.
    static std::string json_string(const std::string& s) {
        std::string o = "\"";
        for (const unsigned char ch : s) {
            switch (ch) {
                case '"':
                    o += "\\\"";
                    break;
                case '\\':
                    o += "\\\\";
                    break;
                case '\n':
                    o += "\\n";
                    break;
                case '\t':
                    o += "\\t";
                    break;
                case '\r':
                    o += "\\r";
                    break;
                default:
                    if (ch < 0x20) {
                        char buf[8];
                        std::snprintf(buf, sizeof buf, "\\u%04x", ch);
                        o += buf;
                    } else {
                        o += char(ch);
                    }
            }
        }
        return o + "\"";
    }

private:
    std::vector<std::string> header_;
    std::vector<std::vector<cell>> rows_;
};

}  // namespace odma::tools
