// odma_internal/svg.hpp - small hand-written SVG line charts for odma's tools.
//
// A chart is a title, two axis labels and some series of (x, y) points; render() draws axes
// with round-numbered ticks, a light grid, one polyline per series (straight or as steps) and
// a legend. The output is a standalone SVG file any browser or GitHub shows; no fonts or
// scripts are needed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace odma::tools::svg {

/// One line of a chart.
struct series {
    std::string name;
    std::vector<std::pair<double, double>> points;  ///< (x, y), ascending x
    std::string color;                              ///< empty: the next palette colour
    bool step = false;  ///< draw as a staircase (value holds until the next point)
    bool dashed = false;
    bool in_legend = true;  ///< several series can share one legend entry by hiding the rest
    double stroke_width = 1.8;
};

/// A chart; y_min / y_max / x_max fix the axis range (otherwise it fits the data).
struct chart {
    std::string title;
    std::string x_label;
    std::string y_label;
    std::vector<series> lines;
    std::optional<double> y_min, y_max, x_max;
    bool y_percent = false;  ///< y in [0, 1] shown as percent
    double width = 860;
    double height = 440;
};

/// The Okabe-Ito palette: distinguishable with the common colour-vision deficiencies.
inline const std::vector<std::string>& palette() {
    static const std::vector<std::string> p{"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                            "#E69F00", "#56B4E9", "#000000", "#F0E442"};
    return p;
}

/// "Nice" tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten, about
/// `target` of them.
inline std::vector<double> nice_ticks(double lo, double hi, int target = 6) {
    if (!(hi > lo)) hi = lo + 1;
    const double raw = (hi - lo) / std::max(1, target);
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    double step = mag;
    for (const double f : {1.0, 2.0, 5.0, 10.0})
        if (f * mag >= raw) {
            step = f * mag;
            break;
        }
    std::vector<double> t;
    const double first = std::ceil(lo / step - 1e-9), last = std::floor(hi / step + 1e-9);
    for (double k = first; k <= last; ++k)
        t.push_back(k * step + 0.0);  // k x step, not a running sum (no drift); + 0.0: no -0
    return t;
}

/// Text safe inside SVG elements and attributes.
inline std::string escape(const std::string& s) {
    std::string o;
    for (const char c : s) {
        switch (c) {
            case '&':
                o += "&amp;";
                break;
            case '<':
                o += "&lt;";
                break;
            case '>':
                o += "&gt;";
                break;
            case '"':
                o += "&quot;";
                break;
            default:
                o += c;
        }
    }
    return o;
}

namespace detail {
inline std::string num(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", v);
    return b;
}
inline std::string tick_label(double v, double step, bool percent) {
    char b[32];
    if (percent) {
        std::snprintf(b, sizeof b, "%.0f%%", v * 100.0);
    } else {
        const int decimals = step >= 1 ? 0 : int(std::ceil(-std::log10(step) - 1e-9));
        std::snprintf(b, sizeof b, "%.*f", std::max(0, decimals), v);
    }
    return b;
}
}  // namespace detail

/// The chart as an SVG document.
inline std::string render(const chart& c) {
    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
    for (const auto& s : c.lines)
        for (const auto& [x, y] : s.points) {
            if (!std::isfinite(x) || !std::isfinite(y)) continue;
            x0 = std::min(x0, x);
            x1 = std::max(x1, x);
            y0 = std::min(y0, y);
            y1 = std::max(y1, y);
        }
    if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    x0 = std::min(x0, 0.0);
    if (c.x_max) x1 = *c.x_max;
    y0 = c.y_min ? *c.y_min : std::min(y0, 0.0);
    if (c.y_max) y1 = *c.y_max;
    if (!(x1 > x0)) x1 = x0 + 1;
    if (!(y1 > y0)) y1 = y0 + 1;

    const double left = 78, right = 190, top = 44, bottom = 56;
    const double pw = c.width - left - right, ph = c.height - top - bottom;
    const auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
    const auto py = [&](double y) {
        return top + ph - (std::clamp(y, y0, y1) - y0) / (y1 - y0) * ph;
    };

    std::ostringstream o;
    o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << c.width << "\" height=\""
      << c.height << "\" viewBox=\"0 0 " << c.width << ' ' << c.height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    o << "<text x=\"" << detail::num(left + pw / 2) << "\" y=\"24\" text-anchor=\"middle\" "
      << "font-size=\"15\" font-weight=\"bold\">" << escape(c.title) << "</text>\n";

    // Grid, ticks and tick labels.
    const auto xt = nice_ticks(x0, x1, 8), yt = nice_ticks(y0, y1, 6);
    const double xs = xt.size() > 1 ? xt[1] - xt[0] : 1, ys = yt.size() > 1 ? yt[1] - yt[0] : 1;
    for (const double v : xt) {
        if (v < x0 - 1e-12 || v > x1 + 1e-12) continue;
        o << "<line x1=\"" << detail::num(px(v)) << "\" y1=\"" << top << "\" x2=\""
          << detail::num(px(v)) << "\" y2=\"" << top + ph << "\" stroke=\"#e6e6e6\"/>\n";
        o << "<text x=\"" << detail::num(px(v)) << "\" y=\"" << top + ph + 18
          << "\" text-anchor=\"middle\">" << detail::tick_label(v, xs, false) << "</text>\n";
    }
    for (const double v : yt) {
        if (v < y0 - 1e-12 || v > y1 + 1e-12) continue;
        o << "<line x1=\"" << left << "\" y1=\"" << detail::num(py(v)) << "\" x2=\"" << left + pw
          << "\" y2=\"" << detail::num(py(v)) << "\" stroke=\"#e6e6e6\"/>\n";
        o << "<text x=\"" << left - 8 << "\" y=\"" << detail::num(py(v) + 4)
          << "\" text-anchor=\"end\">" << detail::tick_label(v, ys, c.y_percent) << "</text>\n";
    }
    // Axes and their labels.
    o << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << detail::num(pw)
      << "\" height=\"" << detail::num(ph) << "\" fill=\"none\" stroke=\"#333\"/>\n";
    o << "<text x=\"" << detail::num(left + pw / 2) << "\" y=\"" << c.height - 14
      << "\" text-anchor=\"middle\">" << escape(c.x_label) << "</text>\n";
    o << "<text transform=\"translate(18 " << detail::num(top + ph / 2)
      << ") rotate(-90)\" text-anchor=\"middle\">" << escape(c.y_label) << "</text>\n";

    // Lines, clipped to the plot area.
    o << "<clipPath id=\"plot\"><rect x=\"" << left << "\" y=\"" << top << "\" width=\""
      << detail::num(pw) << "\" height=\"" << detail::num(ph) << "\"/></clipPath>\n";
    std::size_t colour = 0, legend_row = 0;
    for (const auto& s : c.lines) {
        const std::string col = s.color.empty() ? palette()[colour++ % palette().size()] : s.color;
        std::string pts;
        double last_y = 0;
        bool first = true;
        for (const auto& [x, y] : s.points) {
            if (!std::isfinite(x) || !std::isfinite(y)) continue;
            if (s.step && !first) pts += detail::num(px(x)) + "," + detail::num(py(last_y)) + " ";
            pts += detail::num(px(x)) + "," + detail::num(py(y)) + " ";
            last_y = y;
            first = false;
        }
        if (s.step && !first) pts += detail::num(px(x1)) + "," + detail::num(py(last_y));
        o << "<polyline clip-path=\"url(#plot)\" fill=\"none\" stroke=\"" << col
          << "\" stroke-width=\"" << s.stroke_width << "\""
          << (s.dashed ? " stroke-dasharray=\"6 4\"" : "") << " points=\"" << pts << "\"/>\n";
        if (!s.in_legend) continue;
        const double ly = top + 10 + 20 * double(legend_row++);
        o << "<line x1=\"" << left + pw + 14 << "\" y1=\"" << detail::num(ly) << "\" x2=\""
          << left + pw + 40 << "\" y2=\"" << detail::num(ly) << "\" stroke=\"" << col
          << "\" stroke-width=\"3\"" << (s.dashed ? " stroke-dasharray=\"6 4\"" : "") << "/>\n";
        o << "<text x=\"" << left + pw + 46 << "\" y=\"" << detail::num(ly + 4) << "\">"
          << escape(s.name) << "</text>\n";
    }
    o << "</svg>\n";
    return o.str();
}

/// Writes the chart to `path`; throws std::runtime_error when the file cannot be written.
inline void write(const chart& c, const std::string& path) {
    std::ofstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error(path + ": cannot open for writing");
    f << render(c);
    if (!f) throw std::runtime_error(path + ": write failed");
}

}  // namespace odma::tools::svg
