// odma_internal/table.hpp: aligned text and JSON with the same content.
#include <odma_internal/table.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <sstream>

TEST_CASE("a table prints aligned columns and the same data as JSON") {
    odma::tools::table t({"policy", "utilization", "tps"});
    t.row().add("static").add_percent(0.5505).add(1234.5, 1);
    t.row().add("odma \"v2\"").add_percent(0.7245).add(std::nan(""), 1);
    std::ostringstream text, json;
    t.print(text);
    t.to_json(json);
    CHECK(text.str() ==
          "policy     utilization     tps\n"
          "------------------------------\n"
          "static          55.05%  1234.5\n"
          "odma \"v2\"       72.45%       -\n");
    CHECK(json.str() ==
          "[\n  {\"policy\": \"static\", \"utilization\": 0.5505, \"tps\": 1234.5},\n"
          "  {\"policy\": \"odma \\\"v2\\\"\", \"utilization\": 0.7245, \"tps\": null}\n]");
}
