// A node's report: every status keeps its name through the report line between the node side
// (ferry stage-node, ferry-mpi) and ferry stage, a line with any other status is not a report, and
// the result's JSON form has the keys and order that --json shows.
#include <gtest/gtest.h>

#include <vector>

#include "json_keys.hpp"
#include "stage/stage.hpp"

using namespace ferry;
using stage::NodeReport;
using stage::NodeStatus;

namespace {

const std::vector<std::pair<NodeStatus, std::string>> k_names = {
    {NodeStatus::ok, "ok"},           {NodeStatus::present, "present"},
    {NodeStatus::ready, "ready"},     {NodeStatus::unpacked, "unpacked"},
    {NodeStatus::swept, "swept"},     {NodeStatus::failed, "failed"},
    {NodeStatus::aborted, "aborted"}, {NodeStatus::lost, "lost"},
};

}  // namespace

TEST(NodeReport, EveryStatusRoundTripsThroughItsReportLine) {
  for (const auto& [status, name] : k_names) {
    EXPECT_EQ(util::name(status), name);
    NodeReport r{"node-1", status, status == NodeStatus::failed ? "disk full" : "", 123, 4,
                 1.5,      7 << 20};
    std::string line = stage::report_line(r);
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    EXPECT_NE(line.find("\"status\":\"" + name + "\""), std::string::npos) << line;
    NodeReport back = stage::parse_report_line(line);
    EXPECT_EQ(back.host, r.host);
    EXPECT_EQ(back.status, status) << line;
    EXPECT_EQ(back.error, r.error);
    EXPECT_EQ(back.bytes, 123u);
    EXPECT_EQ(back.files, 4u);
    EXPECT_EQ(back.seconds, 1.5);
    EXPECT_EQ(back.peak_bytes, 7u << 20);
  }
}

TEST(NodeReport, ALineWithoutHostOrWithAnUnknownStatusIsNotAReport) {
  for (const char* line : {R"({"host": "a", "status": "done"})", R"({"host": "a", "status": 3})",
                           R"({"host": "a"})", R"({"status": "ok"})", R"({"phases": []})"})
    EXPECT_ANY_THROW(stage::parse_report_line(line)) << line;
  // Only host and status are needed: the rest has its defaults.
  NodeReport r = stage::parse_report_line(R"({"host": "a", "status": "swept"})");
  EXPECT_EQ(r.status, NodeStatus::swept);
  EXPECT_EQ(r.bytes, 0u);
  EXPECT_EQ(r.error, "");
}

TEST(NodeReport, AnErrorThatIsNotUtf8StillMakesAReport) {
  NodeReport back =
      stage::parse_report_line(stage::report_line(NodeReport::failed("a", "bad member 'x\xff'")));
  EXPECT_EQ(back.status, NodeStatus::failed);
  EXPECT_EQ(back.error, "bad member 'x\xEF\xBF\xBD'");  // U+FFFD for the stray byte
}

TEST(NodeReport, NamedConstructorsAndStaged) {
  NodeReport f = NodeReport::failed("a", "why");
  EXPECT_EQ(f.host, "a");
  EXPECT_EQ(f.status, NodeStatus::failed);
  EXPECT_EQ(f.error, "why");
  EXPECT_EQ(NodeReport::lost("b", "gone").status, NodeStatus::lost);
  EXPECT_EQ(NodeReport::lost("b", "gone").error, "gone");
  EXPECT_EQ(NodeReport::aborted("c").status, NodeStatus::aborted);
  EXPECT_EQ(NodeReport::aborted("c").error, "");
  EXPECT_EQ(NodeReport::swept("d").status, NodeStatus::swept);
  for (const auto& [status, name] : k_names) {
    NodeReport r;
    r.status = status;
    EXPECT_EQ(r.staged(), name == "unpacked" || name == "present") << name;
  }
}

TEST(StageResult, JsonHasTheKeysOfStageJsonAndPhasesInTheirOrder) {
  stage::StageResult r;
  r.via = stage::Via::sbcast;
  r.archive = "/shared/env.tar.zst";
  r.dir = "/local/env";
  r.ok = true;
  r.phases = {{"prepare", 0.5}, {"broadcast", 2}, {"extract", 3}, {"commit", 0.25}};
  NodeReport n1{"n1", NodeStatus::unpacked, "", 10, 2, 3.5};
  r.nodes = {n1, NodeReport::aborted("n2")};
  nlohmann::ordered_json j = r;
  EXPECT_EQ(json_keys(j),
            (std::vector<std::string>{"ok", "via", "archive", "kind", "dir", "archive_bytes",
                                      "seconds", "phases", "nodes"}));
  EXPECT_EQ(j["via"], "sbcast");
  EXPECT_EQ(j["kind"], "env");
  r.image = true;
  EXPECT_EQ(nlohmann::ordered_json(r)["kind"], "image");
  EXPECT_EQ(json_keys(j["phases"]),
            (std::vector<std::string>{"prepare", "broadcast", "extract", "commit"}));
  EXPECT_EQ(j["phases"]["commit"], 0.25);
  EXPECT_EQ(json_keys(j["nodes"][0]), (std::vector<std::string>{"host", "status", "bytes", "files",
                                                                "seconds", "peak_bytes", "error"}));
  EXPECT_EQ(j["nodes"][0]["status"], "unpacked");
  EXPECT_EQ(j["nodes"][1]["status"], "aborted");
  EXPECT_EQ(util::name(stage::Via::mpi), "mpi");
  EXPECT_EQ(util::name(stage::Via::automatic), "auto");
}
