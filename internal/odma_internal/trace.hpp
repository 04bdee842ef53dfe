// odma_internal/trace.hpp - reading request-length traces for odma's tools.
//
// Not part of the library: the tools (odma-eval, odma-replay), tests and benchmarks use it to load
// the bundled traces in data/ and users' own CSV files. Plain C++, no dependencies: a small CSV
// reader and a JSON-lines reader that understands flat objects of strings and numbers.
#pragma once

#include <odma/support/random.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace odma::tools {

/// One request of a trace.
struct trace_request {
    std::uint64_t id = 0;         ///< position in the trace (0, 1, ...)
    std::uint64_t prompt_id = 0;  ///< identifies the prompt (train/test splits group by it)
    double arrival_s = 0.0;       ///< seconds since the first request; 0 when unknown
    std::uint32_t prompt_tokens = 0;
    std::uint32_t output_tokens = 0;  ///< the true generated length
    std::string tag;                  ///< request class (e.g. the answering model), may be empty
    std::string prompt_text;          ///< may be empty
};

/// A loaded trace and where it came from.
struct trace {
    std::string name;
    std::vector<trace_request> requests;
    bool has_arrivals = false;  ///< arrival_s is real, not synthetic
    bool has_text = false;
};

/// Thrown for unreadable or malformed input; the message names the file and line.
class trace_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {

/// Splits one CSV line (RFC 4180 quoting: "a,b" and "" inside quotes).
inline std::vector<std::string> split_csv(std::string_view line) {
    std::vector<std::string> out(1);
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quoted) {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
                out.back() += '"';
                ++i;
            } else if (c == '"') {
                quoted = false;
            } else {
                out.back() += c;
            }
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            out.emplace_back();
        } else if (c != '\r') {
            out.back() += c;
        }
    }
    return out;
}

template <class T>
T parse_number(std::string_view s, const std::string& where) {
    while (!s.empty() && s.front() == ' ')
        s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ')
        s.remove_suffix(1);
    T v{};
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size())
        throw trace_error(where + ": '" + std::string(s) + "' is not a number");
    return v;
}

/// Seconds since the epoch of "YYYY-MM-DD HH:MM:SS[.fraction]" read as UTC.
inline double parse_timestamp(std::string_view s, const std::string& where) {
    int Y, M, D, h, m;
    double sec;
    const std::string text(s);
    if (std::sscanf(text.c_str(), "%d-%d-%d %d:%d:%lf", &Y, &M, &D, &h, &m, &sec) != 6)
        throw trace_error(where + ": '" + text + "' is not a YYYY-MM-DD HH:MM:SS timestamp");
    // Days from civil (proleptic Gregorian), so no time zone or locale is involved.
    const int y = Y - (M <= 2);
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = unsigned(y - era * 400);
    const unsigned doy = unsigned((153 * (M + (M > 2 ? -3 : 9)) + 2) / 5 + D - 1);
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    const long days = long(era) * 146097 + long(doe) - 719468;
    return double(days) * 86400.0 + h * 3600.0 + m * 60.0 + sec;
}

/// A flat JSON object: string and number values by key. Nested values are skipped.
class json_line {
public:
    json_line(std::string_view text, const std::string& where) : where_(where) {
        std::size_t i = skip(text, 0);
        expect(text, i, '{');
        i = skip(text, i + 1);
        if (i < text.size() && text[i] == '}') return;
        for (;;) {
            i = skip(text, i);
            std::string key = read_string(text, i);
            i = skip(text, i);
            expect(text, i, ':');
            i = skip(text, i + 1);
            if (i < text.size() && text[i] == '"') {
                values_[key] = read_string(text, i);
            } else {
                const std::size_t start = i;
                int depth = 0;
                bool in_string = false;
                for (; i < text.size(); ++i) {
                    const char c = text[i];
                    if (in_string) {
                        if (c == '\\')
                            ++i;
                        else if (c == '"')
                            in_string = false;
                    } else if (c == '"') {
                        in_string = true;
                    } else if (c == '[' || c == '{') {
                        ++depth;
                    } else if (c == ']' || c == '}') {
                        if (depth == 0) break;
                        --depth;
                    } else if (c == ',' && depth == 0) {
                        break;
                    }
                }
                std::string raw(text.substr(start, i - start));
                while (!raw.empty() && raw.back() == ' ')
                    raw.pop_back();
                values_[key] = raw;
            }
            i = skip(text, i);
            if (i < text.size() && text[i] == ',') {
                ++i;
                continue;
            }
            expect(text, i, '}');
            return;
        }
    }

    const std::string* find(const std::string& key) const {
        const auto it = values_.find(key);
        return it == values_.end() ? nullptr : &it->second;
    }
    const std::string& at(const std::string& key) const {
        if (const auto* v = find(key)) return *v;
        throw trace_error(where_ + ": no \"" + key + "\" field");
    }

private:
    static std::size_t skip(std::string_view t, std::size_t i) {
        while (i < t.size() && (t[i] == ' ' || t[i] == '\t' || t[i] == '\r' || t[i] == '\n'))
            ++i;
        return i;
    }
    void expect(std::string_view t, std::size_t i, char c) const {
        if (i >= t.size() || t[i] != c)
            throw trace_error(where_ + ": malformed JSON, expected '" + std::string(1, c) + "'");
    }
    std::string read_string(std::string_view t, std::size_t& i) const {
        expect(t, i, '"');
        std::string out;
        for (++i; i < t.size(); ++i) {
            char c = t[i];
            if (c == '"') {
                ++i;
                return out;
            }
            if (c != '\\') {
                out += c;
                continue;
            }
            if (++i >= t.size()) break;
            switch (t[i]) {
                case 'n':
                    out += '\n';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'u': {
                    if (i + 4 >= t.size()) throw trace_error(where_ + ": bad \\u escape");
                    unsigned cp = 0;
                    std::from_chars(t.data() + i + 1, t.data() + i + 5, cp, 16);
                    i += 4;
                    // Surrogate pair -> one code point.
                    if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < t.size() && t[i + 1] == '\\' &&
                        t[i + 2] == 'u') {
                        unsigned lo = 0;
                        std::from_chars(t.data() + i + 3, t.data() + i + 7, lo, 16);
                        if (lo >= 0xDC00 && lo < 0xE000) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            i += 6;
                        }
                    }
                    append_utf8(out, cp);
                    break;
                }
                default:
                    out += t[i];  // \" \\ \/
            }
        }
        throw trace_error(where_ + ": unterminated JSON string");
    }
    static void append_utf8(std::string& s, unsigned cp) {
        if (cp < 0x80) {
            s += char(cp);
        } else if (cp < 0x800) {
            s += char(0xC0 | (cp >> 6));
            s += char(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            s += char(0xE0 | (cp >> 12));
            s += char(0x80 | ((cp >> 6) & 0x3F));
            s += char(0x80 | (cp & 0x3F));
        } else {
            s += char(0xF0 | (cp >> 18));
            s += char(0x80 | ((cp >> 12) & 0x3F));
            s += char(0x80 | ((cp >> 6) & 0x3F));
            s += char(0x80 | (cp & 0x3F));
        }
    }

    std::string where_;
    std::unordered_map<std::string, std::string> values_;
};

/// A CSV file with a header row; columns are looked up by name.
class csv_table {
public:
    explicit csv_table(const std::string& path) : path_(path) {
        std::ifstream in(path);
        if (!in) throw trace_error(path + ": cannot open");
        std::string line;
        if (!std::getline(in, line)) throw trace_error(path + ": empty file");
        header_ = split_csv(line);
        for (std::size_t i = 0; i < header_.size(); ++i)
            index_[header_[i]] = i;
        std::size_t number = 1;
        while (std::getline(in, line)) {
            ++number;
            if (line.empty() || line == "\r") continue;
            rows_.push_back(split_csv(line));
            if (rows_.back().size() != header_.size())
                throw trace_error(path + ":" + std::to_string(number) + ": expected " +
                                  std::to_string(header_.size()) + " fields, found " +
                                  std::to_string(rows_.back().size()));
            lines_.push_back(number);
        }
    }

    bool has(const std::string& column) const { return index_.count(column) != 0; }
    std::size_t column(const std::string& name) const {
        const auto it = index_.find(name);
        if (it == index_.end()) throw trace_error(path_ + ": no column '" + name + "'");
        return it->second;
    }
    std::size_t size() const { return rows_.size(); }
    const std::string& cell(std::size_t row, std::size_t col) const { return rows_[row][col]; }
    std::string where(std::size_t row) const { return path_ + ":" + std::to_string(lines_[row]); }
    template <class T>
    T number(std::size_t row, std::size_t col) const {
        return parse_number<T>(rows_[row][col], where(row));
    }

private:
    std::string path_;
    std::vector<std::string> header_;
    std::map<std::string, std::size_t> index_;
    std::vector<std::vector<std::string>> rows_;
    std::vector<std::size_t> lines_;
};

/// Calls f(json_line) for every non-empty line of a JSON-lines file.
template <class F>
void for_each_json_line(const std::string& path, F&& f) {
    std::ifstream in(path);
    if (!in) throw trace_error(path + ": cannot open");
    std::string line;
    std::size_t number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (line.empty()) continue;
        f(json_line(line, path + ":" + std::to_string(number)));
    }
}

}  // namespace detail

namespace detail {

/// The columns of a lengths CSV whose rows are answers to identified prompts, and the JSON-lines
/// file of prompt texts keyed by the same id (AlpacaEval, NQ).
struct prompt_lengths_format {
    const char* name;      ///< the trace's name
    const char* id;        ///< the prompt id column (also the JSON key)
    const char* tag;       ///< the column read as the request's tag
    const char* text_key;  ///< the JSON key of the prompt text
};

/// Loads a lengths CSV of format `f` (`prompt_tokens`, `output_tokens`, f.id, f.tag), with the
/// prompt texts of `prompts_jsonl` when it is not empty.
inline trace load_prompt_lengths(const prompt_lengths_format& f, const std::string& csv,
                                 const std::string& prompts_jsonl) {
    csv_table t(csv);
    std::unordered_map<std::uint64_t, std::string> text;
    if (!prompts_jsonl.empty())
        for_each_json_line(prompts_jsonl, [&](const json_line& j) {
            text[parse_number<std::uint64_t>(j.at(f.id), prompts_jsonl)] = j.at(f.text_key);
        });
    const auto pid = t.column(f.id), tag = t.column(f.tag), prompt = t.column("prompt_tokens"),
               output = t.column("output_tokens");
    trace tr{f.name, {}, false, !text.empty()};
    tr.requests.reserve(t.size());
    for (std::size_t r = 0; r < t.size(); ++r) {
        trace_request q;
        q.id = r;
        q.prompt_id = t.number<std::uint64_t>(r, pid);
        q.prompt_tokens = t.number<std::uint32_t>(r, prompt);
        q.output_tokens = t.number<std::uint32_t>(r, output);
        q.tag = t.cell(r, tag);
        if (const auto it = text.find(q.prompt_id); it != text.end()) q.prompt_text = it->second;
        tr.requests.push_back(std::move(q));
    }
    return tr;
}

}  // namespace detail

/// AlpacaEval: `model, instruction_id, prompt_tokens, output_tokens` and optionally the
/// prompts (`instruction_id`, `instruction`). tag = model; prompt_id = instruction_id.
inline trace load_alpaca_eval(const std::string& lengths_csv,
                              const std::string& prompts_jsonl = "") {
    return detail::load_prompt_lengths({"alpaca_eval", "instruction_id", "model", "instruction"},
                                       lengths_csv, prompts_jsonl);
}

/// NQ-open: `id, split, prompt_tokens, output_tokens, ...` and optionally the questions
/// (`id`, `prompt`). tag = split.
inline trace load_nq(const std::string& csv, const std::string& prompts_jsonl = "") {
    return detail::load_prompt_lengths({"nq", "id", "split", "prompt"}, csv, prompts_jsonl);
}

/// Azure LLM inference trace: `TIMESTAMP, ContextTokens, GeneratedTokens`. Arrival times are
/// relative to the first request. Each request is its own prompt (no ids in the source).
inline trace load_azure(const std::string& csv) {
    detail::csv_table t(csv);
    const auto ts = t.column("TIMESTAMP"), ctx = t.column("ContextTokens"),
               gen = t.column("GeneratedTokens");
    trace tr{"azure", {}, true, false};
    tr.requests.reserve(t.size());
    double first = 0.0;
    for (std::size_t r = 0; r < t.size(); ++r) {
        trace_request q;
        q.id = q.prompt_id = r;
        const double at = detail::parse_timestamp(t.cell(r, ts), t.where(r));
        if (r == 0) first = at;
        q.arrival_s = at - first;
        q.prompt_tokens = t.number<std::uint32_t>(r, ctx);
        q.output_tokens = t.number<std::uint32_t>(r, gen);
        tr.requests.push_back(std::move(q));
    }
    std::stable_sort(tr.requests.begin(), tr.requests.end(),
                     [](const auto& a, const auto& b) { return a.arrival_s < b.arrival_s; });
    return tr;
}

/// A generic CSV trace. Required columns: `prompt_tokens`, `output_tokens`. Optional:
/// `arrival_s` (seconds), `prompt_id`, `tag`, `prompt_text`.
inline trace load_generic(const std::string& csv) {
    detail::csv_table t(csv);
    const auto prompt = t.column("prompt_tokens"), output = t.column("output_tokens");
    const auto opt = [&](const char* c) -> std::optional<std::size_t> {
        return t.has(c) ? std::optional<std::size_t>(t.column(c)) : std::nullopt;
    };
    const auto arrival = opt("arrival_s"), pid = opt("prompt_id"), tag = opt("tag"),
               text = opt("prompt_text");
    trace tr{csv, {}, arrival.has_value(), text.has_value()};
    for (std::size_t r = 0; r < t.size(); ++r) {
        trace_request q;
        q.id = r;
        q.prompt_id = pid ? t.number<std::uint64_t>(r, *pid) : r;
        q.arrival_s = arrival ? t.number<double>(r, *arrival) : 0.0;
        q.prompt_tokens = t.number<std::uint32_t>(r, prompt);
        q.output_tokens = t.number<std::uint32_t>(r, output);
        if (tag) q.tag = t.cell(r, *tag);
        if (text) q.prompt_text = t.cell(r, *text);
        tr.requests.push_back(std::move(q));
    }
    return tr;
}

/// Mooncake's JSON-lines traces (kvcache-ai/Mooncake, FAST'25 release): one object a line with
/// `timestamp` (arrival in milliseconds), `input_length`, `output_length` and `hash_ids` (ids
/// of the prompt's 512-token prefix blocks; equal ids mean a shared prefix). prompt_id is the
/// first block's id, so requests that share their first block share a prompt; the prefix
/// sharing itself is not modelled. tag = "" (the trace has no classes).
inline trace load_mooncake(const std::string& jsonl) {
    trace tr{jsonl, {}, true, false};
    std::uint64_t id = 0;
    detail::for_each_json_line(jsonl, [&](const detail::json_line& j) {
        trace_request q;
        q.id = id++;
        q.arrival_s = detail::parse_number<double>(j.at("timestamp"), jsonl) / 1000.0;
        q.prompt_tokens = detail::parse_number<std::uint32_t>(j.at("input_length"), jsonl);
        q.output_tokens = detail::parse_number<std::uint32_t>(j.at("output_length"), jsonl);
        q.prompt_id = q.id;
        if (const std::string* h = j.find("hash_ids")) {
            const auto first = h->find_first_of("0123456789");
            const auto end = h->find_first_not_of("0123456789", first);
            if (first != std::string::npos)
                q.prompt_id = detail::parse_number<std::uint64_t>(
                    h->substr(first, end == std::string::npos ? end : end - first), jsonl);
        }
        tr.requests.push_back(std::move(q));
    });
    if (tr.requests.empty()) throw trace_error(jsonl + ": no requests");
    return tr;
}

/// True when `path` ends in `suffix`.
inline bool ends_with(const std::string& path, std::string_view suffix) {
    return path.size() >= suffix.size() &&
           std::string_view(path).substr(path.size() - suffix.size()) == suffix;
}

/// Loads `path`, recognising the bundled formats by their columns: AlpacaEval (prompts read
/// from alpaca_eval_prompts.jsonl beside it when present), Azure, NQ (nq_prompts.jsonl), or a
/// generic CSV; a `.jsonl` file is read as a Mooncake trace.
inline trace load_trace(const std::string& path) {
    if (ends_with(path, ".jsonl")) return load_mooncake(path);
    const std::string dir =
        path.find('/') == std::string::npos ? "" : path.substr(0, path.rfind('/') + 1);
    const auto exists = [](const std::string& p) { return std::ifstream(p).good(); };
    const detail::csv_table probe_header(path);  // cheap enough for the bundled sizes
    if (probe_header.has("instruction_id")) {
        const std::string prompts = dir + "alpaca_eval_prompts.jsonl";
        return load_alpaca_eval(path, exists(prompts) ? prompts : "");
    }
    if (probe_header.has("GeneratedTokens")) return load_azure(path);
    if (probe_header.has("n_answers")) {
        const std::string prompts = dir + "nq_prompts.jsonl";
        return load_nq(path, exists(prompts) ? prompts : "");
    }
    return load_generic(path);
}

/// Deterministic split by prompt: every request of a prompt lands on the same side, so no
/// prompt is in both. `test_fraction` of the distinct prompts (chosen by a seeded hash) go to
/// the test side.
inline void split_by_prompt(const trace& t, double test_fraction, std::uint64_t seed,
                            std::vector<const trace_request*>& train,
                            std::vector<const trace_request*>& test) {
    // One splitmix64 draw seeded by (seed, prompt): a fixed, platform-independent hash.
    const auto mix = [seed](std::uint64_t prompt_id) {
        return support::splitmix64(seed * 0x9e3779b97f4a7c15ull + prompt_id)();
    };
    const auto threshold = static_cast<std::uint64_t>(test_fraction * 18446744073709551615.0);
    train.clear();
    test.clear();
    for (const auto& r : t.requests)
        (mix(r.prompt_id) < threshold ? test : train).push_back(&r);
}

}  // namespace odma::tools
