// odma_internal/svg.hpp: ticks, escaping, and a chart with what a reader needs.
#include <odma_internal/svg.hpp>

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

namespace svg = odma::tools::svg;

namespace {
std::size_t count(const std::string& s, const std::string& what) {
    std::size_t n = 0;
    for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1))
        ++n;
    return n;
}
}  // namespace

TEST_CASE("svg: nice ticks are round numbers covering the range") {
    const auto near = [](const std::vector<double>& got, const std::vector<double>& want) {
        if (got.size() != want.size()) return false;
        for (std::size_t i = 0; i < got.size(); ++i)
            if (got[i] != doctest::Approx(want[i])) return false;
        return true;
    };
    CHECK(near(svg::nice_ticks(0, 1, 5), {0, 0.2, 0.4, 0.6, 0.8, 1.0}));
    CHECK(near(svg::nice_ticks(0, 1000, 4), {0, 500, 1000}));
    const auto t = svg::nice_ticks(3, 97, 6);
    REQUIRE(t.size() >= 2);
    CHECK(t.front() >= 3);
    CHECK(t.back() <= 97);
    CHECK(t[1] - t[0] == doctest::Approx(20));
}

TEST_CASE("svg: a chart has axes, ticks, a legend entry per shown series, escaped text") {
    svg::chart c;
    c.title = "util <a & b>";
    c.x_label = "time (s)";
    c.y_label = "share";
    c.y_percent = true;
    c.y_min = 0;
    c.y_max = 1;
    const auto line = [](std::string name, std::vector<std::pair<double, double>> pts) {
        svg::series s;
        s.name = std::move(name);
        s.points = std::move(pts);
        return s;
    };
    c.lines.push_back(line("static", {{0, 0.2}, {10, 0.5}}));
    c.lines.push_back(line("odma", {{0, 0.4}, {5, 0.9}, {10, 0.8}}));
    c.lines.back().step = true;
    c.lines.push_back(line("hidden", {{0, 0.1}}));
    c.lines.back().in_legend = false;
    const std::string s = svg::render(c);
    CHECK(s.rfind("<svg", 0) == 0);
    CHECK(s.find("</svg>") != std::string::npos);
    CHECK(s.find("util &lt;a &amp; b&gt;") != std::string::npos);
    CHECK(s.find("<a & b>") == std::string::npos);
    CHECK(count(s, "<polyline") == 3);
    CHECK(s.find(">static</text>") != std::string::npos);
    CHECK(s.find(">odma</text>") != std::string::npos);
    CHECK(s.find(">hidden</text>") == std::string::npos);
    CHECK(s.find(">100%</text>") != std::string::npos);  // percent ticks
    CHECK(s.find(">time (s)</text>") != std::string::npos);
    // The staircase repeats the previous y before each step: 3 points -> 3 + 2 + 1 vertices.
    const auto odma_line = s.find("#D55E00\" stroke-width=\"1.8\" points=\"");
    REQUIRE(odma_line != std::string::npos);
    const auto end = s.find("\"/>", odma_line + 40);
    const std::string pts = s.substr(odma_line, end - odma_line);
    CHECK(count(pts, ",") == 6);
}
