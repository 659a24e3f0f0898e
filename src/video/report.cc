#include "video/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "util/fs.h"
#include "video/input_file.h"

namespace ns::video {
namespace {

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// "1:05.3": minutes, seconds and tenths (a track of 22 boxes lasts about 2 s).
std::string Clock(double seconds) {
  long tenths = std::lround(std::max(0.0, seconds) * 10);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%ld:%02ld.%ld", tenths / 600, (tenths / 10) % 60, tenths % 10);
  return buf;
}

// An <img> with the file inlined, or "" when the file is missing. `flag` names the
// folder it came from in messages.
Result<std::string> InlineImage(const std::string& path, const std::string& flag,
                                const std::string& mime, const std::string& alt,
                                const std::string& cls) {
  auto bytes = ReadSmallFile(path, flag);
  if (!bytes.ok() && bytes.status().code() == StatusCode::kNotFound) return std::string();
  if (!bytes.ok()) return bytes.status();
  return "<img class=\"" + cls + "\" alt=\"" + HtmlEscape(alt) + "\" src=\"data:" + mime + ";base64," +
         Base64(*bytes) + "\">";
}

Result<nlohmann::json> ReadJson(const std::string& path, const std::string& flag) {
  auto text = ReadSmallFile(path, flag);
  if (!text.ok()) return text.status();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) return Status::Invalid(path + ": not valid JSON");
  return j;
}

double Num(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

std::string Str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// Money as `nightshift cost` shows it: to the cent from 1 up, to a hundredth of
// a cent below (a short run costs fractions of a cent).
std::string Money(double v, const std::string& currency) {
  if (v > 0 && v < 0.00005) return "< 0.0001" + (currency.empty() ? "" : " " + currency);
  char buf[64];
  std::snprintf(buf, sizeof buf, v >= 1 || v == 0 ? "%.2f" : "%.4f", v);
  return std::string(buf) + (currency.empty() ? "" : " " + currency);
}

// The cost section: actual against all on-demand and one machine for the
// whole run, savings, work lost to preemptions, then per step.
Status CostSection(const nlohmann::json& c, const std::string& path, std::ostringstream& h) {
  if (!c.is_object() || !c.contains("actual") || !c["actual"].is_number()) {
    return Status::Invalid(path + ": not the JSON of `nightshift cost RUN --json` (no number \"actual\")");
  }
  std::string cur = Str(c, "currency");
  bool partial = c.value("partial", false) == true;
  h << "<h2>Cost" << (partial ? " so far" : "") << "</h2>\n<table class=\"kv\">\n";
  h << "<tr><td>This run</td><td><b>" << Money(Num(c, "actual"), cur) << "</b>"
    << (partial ? " (steps still running are billed up to now)" : "") << "</td></tr>\n";
  h << "<tr><td>All on-demand</td><td>" << Money(Num(c, "all_on_demand"), cur) << "</td></tr>\n";
  h << "<tr><td>One machine for the run</td><td>" << Money(Num(c, "monolithic"), cur) << " ("
    << HtmlEscape(Str(c, "monolithic_instance")) << ", on-demand, for the run's wall time)</td></tr>\n";
  h << "<tr><td>Savings</td><td>" << Fixed(Num(c, "savings_percent"), 0) << "%</td></tr>\n";
  if (Num(c, "lost_ms") > 0) {
    h << "<tr><td>Lost to preemptions</td><td>" << Fixed(Num(c, "lost_ms") / 1000.0, 1) << " s, "
      << Money(Num(c, "lost_cost"), cur) << "</td></tr>\n";
  }
  h << "</table>\n<table><tr><th>Step</th><th>Attempts</th><th>On spot</th><th>Billed time (s)</th>"
    << "<th>Instance</th><th>Cost</th></tr>\n";
  auto steps = c.find("steps");
  if (steps != c.end() && steps->is_array()) {
    for (const auto& st : *steps) {
      if (!st.is_object()) continue;
      std::string inst;
      auto it = st.find("instances");
      if (it != st.end() && it->is_array()) {
        for (const auto& i : *it)
          if (i.is_string()) inst += (inst.empty() ? "" : ", ") + i.get<std::string>();
      }
      h << "<tr><td>" << HtmlEscape(Str(st, "step")) << "</td><td>" << Fixed(Num(st, "attempts"), 0) << "</td><td>"
        << Fixed(Num(st, "spot_attempts"), 0) << "</td><td>" << Fixed(Num(st, "duration_ms") / 1000.0, 1)
        << "</td><td>" << HtmlEscape(inst) << "</td><td>" << Money(Num(st, "cost"), cur) << "</td></tr>\n";
    }
  }
  h << "</table>\n";
  auto cat = c.find("catalogue");
  if (cat != c.end() && cat->is_object()) {
    h << "<p class=\"muted\">Prices: " << HtmlEscape(Str(*cat, "source")) << " (" << HtmlEscape(Str(*cat, "prices_date"))
      << ").</p>\n";
  }
  return Status::Ok();
}

constexpr char kStyle[] = R"(
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{margin-bottom:.2em} .muted{color:#666} table{border-collapse:collapse;width:100%;margin:1em 0}
th,td{border-bottom:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:middle}
th{background:#f4f4f4} .swatch{display:inline-block;width:1em;height:1em;border:1px solid #999;
vertical-align:middle;margin-right:.4em} .heat{max-width:100%;border:1px solid #ccc}
.thumb{height:64px;border:1px solid #ccc} .teams{display:flex;gap:2em;flex-wrap:wrap}
.team{flex:1;min-width:300px} .kv td:first-child{color:#666;width:14em}
.quality{border:1px solid #d9c27a;background:#fffbea;padding:.6em 1em;margin:1em 0}
.quality.ok{border-color:#9c9;background:#f3fbf3} .quality li{margin:.2em 0}
video{max-width:100%;background:#000} tr.seek{cursor:pointer} tr.seek:hover{background:#eef4ff}
th.sort{cursor:pointer;user-select:none} th.sort:after{content:" \2195";color:#999}
.scale{display:flex;align-items:center;gap:.5em;font-size:.85em;color:#444;margin:.3em 0}
.scale .bar{flex:0 0 200px;height:12px;border:1px solid #999;
background:linear-gradient(to right,#00007f,#0000ff,#007fff,#00ffff,#7fff7f,#ffff00,#ff7f00,#ff0000,#7f0000)}
)";

// Rows of the tracks table seek the video to their first appearance; headers sort.
constexpr char kScript[] = R"(
document.querySelectorAll('tr.seek').forEach(function (row) {
  row.addEventListener('click', function () {
    var v = document.getElementById('video');
    if (!v) return;
    v.currentTime = parseFloat(row.dataset.t);
    v.scrollIntoView({block: 'nearest'});
    v.play().catch(function () {});
  });
});
document.querySelectorAll('th.sort').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), rows = Array.from(table.querySelectorAll('tr.seek'));
    var i = Array.prototype.indexOf.call(th.parentNode.children, th);
    var dir = th.dataset.dir === 'asc' ? -1 : 1;
    th.dataset.dir = dir === 1 ? 'asc' : 'desc';
    rows.sort(function (a, b) {
      var x = a.children[i].dataset.v, y = b.children[i].dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y);
      return dir * (isNaN(nx) || isNaN(ny) ? String(x).localeCompare(String(y)) : nx - ny);
    });
    rows.forEach(function (r) { table.appendChild(r); });
  });
});
)";

// The largest count of a heatmap JSON (its colour scale's top), or -1.
double HeatmapMax(const std::string& path) {
  auto text = ReadSmallFile(path, "--input");
  if (!text.ok()) return -1;
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return -1;
  double m = 0;
  for (const auto& c : j.value("counts", nlohmann::json::array())) {
    if (c.is_number()) m = std::max(m, c.get<double>());
  }
  return m;
}

// The colour scale under a heatmap: what its colours count.
std::string Scale(const std::string& json_path) {
  double max = HeatmapMax(json_path);
  if (max < 0) return "";
  return "<div class=\"scale\"><span>less time</span><span class=\"bar\"></span><span>more time (the busiest "
         "cell holds " + Fixed(max, 0) + " positions: a track's feet, once per processed frame; smoothed)</span></div>";
}

// detect.json of every segment under the detect step's folder (or of one folder).
Result<std::vector<nlohmann::json>> DetectMetas(const std::string& dir) {
  std::vector<nlohmann::json> out;
  std::vector<std::string> files;
  if (IsRegularFile(dir + "/detect.json")) files.push_back(dir + "/detect.json");
  auto names = ListDir(dir);
  if (names.ok()) {
    for (const auto& n : names.value()) {
      if (IsRegularFile(dir + "/" + n + "/detect.json")) files.push_back(dir + "/" + n + "/detect.json");
    }
  }
  if (files.empty()) return Status::Invalid("--detect " + dir + ": no detect.json there (give the detect step's folder)");
  for (const auto& f : files) {
    auto text = ReadSmallFile(f, "--detect");
    if (!text.ok()) return text.status();
    nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_object()) return Status::Invalid(f + ": not a JSON object");
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

std::string Base64(const std::string& in) {
  static const char kTable[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += kTable[(v >> 6) & 63];
    out += kTable[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kTable[v >> 18];
    out += kTable[(v >> 12) & 63];
    out += kTable[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string HtmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Result<std::string> RunReport(const ReportOptions& o) {
  if (o.out_dir.empty()) return Status::Invalid("no output folder: pass --out or set NIGHTSHIFT_OUTPUT_DIR");
  NS_RETURN_IF_ERROR(CheckFolder(o.analysis, "--input", "the analyse step's folder"));
  if (!o.render.empty())
    NS_RETURN_IF_ERROR(CheckFolder(o.render, "--render", "the render step's folder"));
  auto summary = ReadJson(o.analysis + "/summary.json", "--input");
  if (!summary.ok()) return summary.status();
  const nlohmann::json& s = *summary;
  nlohmann::json probe;
  if (!o.probe.empty()) {
    auto p = ReadJson(IsDirectory(o.probe) ? o.probe + "/probe.json" : o.probe, "--probe");
    if (!p.ok()) return p.status();
    probe = *p;
  }
  std::string units = s.value("units", "px");
  std::string link = o.video_link;
  if (link.empty() && !o.render.empty()) link = "../" + BaseName(AbsolutePath(o.render)) + "/annotated.mp4";

  std::ostringstream h;
  h << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    << "<title>" << HtmlEscape(o.title) << "</title><style>" << kStyle << "</style></head><body>\n";
  h << "<h1>" << HtmlEscape(o.title) << "</h1>\n<p class=\"muted\">" << HtmlEscape(s.value("video", ""))
    << "</p>\n";
  h << "<h2>Summary</h2>\n<table class=\"kv\">\n";
  if (!probe.is_null()) {
    h << "<tr><td>Video</td><td>" << probe.value("width", 0) << "x" << probe.value("height", 0) << ", "
      << HtmlEscape(probe.value("codec", "")) << ", " << Fixed(probe.value("fps", 0.0), 2) << " fps, "
      << Clock(probe.value("duration", 0.0)) << " (" << probe.value("frame_count", 0) << " frames)</td></tr>\n";
  }
  h << "<tr><td>Tracks</td><td>" << s.value("tracks_analysed", 0) << " (of "
    << s.value("tracks_total", 0) << " tracks; shorter than " << s.value("min_boxes", 0)
    << " boxes are left out)</td></tr>\n";
  h << "<tr><td>Distances in</td><td>" << (units == "m" ? "metres (pitch homography)" : "pixels (no pitch homography given)")
    << "</td></tr>\n";
  if (!link.empty())
    h << "<tr><td>Annotated video</td><td><a href=\"" << HtmlEscape(link) << "\">" << HtmlEscape(link)
      << "</a></td></tr>\n";
  h << "</table>\n";

  // What a reader should know before trusting the numbers.
  std::vector<std::string> notes;
  bool warn = false;
  if (!o.detect.empty()) {
    auto metas = DetectMetas(o.detect);
    if (!metas.ok()) return metas.status();
    std::set<std::string> kinds, models;
    int64_t lost = 0, errors = 0;
    for (const auto& m : *metas) {
      kinds.insert(m.value("detector", std::string("?")));
      if (!m.value("model", std::string()).empty()) models.insert(m.value("model", std::string()));
      lost += m.value("frames_lost", int64_t{0});
      errors += m.value("decode_errors", int64_t{0});
    }
    std::string k;
    for (const auto& x : kinds) k += (k.empty() ? "" : ", ") + x;
    std::string mo;
    for (const auto& x : models) mo += (mo.empty() ? "" : ", ") + x;
    notes.push_back("Detector: " + HtmlEscape(k) + (mo.empty() ? "" : " (model " + HtmlEscape(mo) + ")") + ", over " +
                    std::to_string(metas->size()) + " segment" + (metas->size() == 1 ? "" : "s") + ".");
    if (lost > 0 || errors > 0) {
      warn = true;
      notes.push_back("<b>" + std::to_string(lost) + " frames could not be decoded</b> (" + std::to_string(errors) +
                      " decode errors): detections there are missing.");
    } else {
      notes.push_back("Every frame was decoded.");
    }
  }
  if (!probe.is_null()) {
    if (probe.value("variable_frame_rate", false)) {
      warn = true;
      notes.push_back("<b>Variable frame rate</b>: times come from the video's timestamps.");
    }
    if (probe.value("header_mismatch", false)) {
      warn = true;
      notes.push_back("<b>The file's header disagrees with its frames</b>; the frames were counted by decoding.");
    }
  }
  if (!s.value("teams_found", true)) {
    warn = true;
    notes.push_back("<b>No teams found</b>: " + HtmlEscape(s.value("no_teams_reason", std::string())) + ".");
  }
  if (units != "m") notes.push_back("Distances and speeds are in pixels: give analyse a pitch homography for metres.");
  if (!notes.empty()) {
    h << "<div class=\"quality" << (warn ? "" : " ok") << "\"><b>Data quality</b><ul>\n";
    for (const auto& n : notes) h << "<li>" << n << "</li>\n";
    h << "</ul></div>\n";
  }
  if (!link.empty()) {
    h << "<video id=\"video\" controls preload=\"metadata\" src=\"" << HtmlEscape(link)
      << "\"></video>\n<p class=\"muted\">Click a track below to see its first appearance.</p>\n";
  }

  if (!o.cost.empty()) {
    auto cost = ReadJson(o.cost, "--cost");
    if (!cost.ok()) return cost.status();
    NS_RETURN_IF_ERROR(CostSection(*cost, o.cost, h));
  }

  h << "<h2>Teams</h2>\n";
  if (!s.value("teams_found", true)) {
    // Said, not guessed: a crowd or one person at a time has no teams.
    h << "<p><b>No teams found</b>: " << HtmlEscape(s.value("no_teams_reason", std::string())) << ".</p>\n";
    if (!o.render.empty()) {
      auto img = InlineImage(o.render + "/heatmap_all.png", "--render", "image/png", "heatmap of every player", "heat");
      if (!img.ok()) return img.status();
      if (!img->empty()) h << "<h3>Every track</h3>\n" << *img << Scale(o.analysis + "/heatmap_all.json") << "\n";
    }
  }
  h << "<div class=\"teams\">\n";
  for (const auto& t : s.value("teams", nlohmann::json::array())) {
    int k = t.value("team", 0);
    std::string colour = t.value("colour", "#888888");
    h << "<div class=\"team\"><h3><span class=\"swatch\" style=\"background:" << HtmlEscape(colour)
      << "\"></span>Team " << (k + 1) << "</h3>\n<p>" << t.value("tracks", nlohmann::json::array()).size()
      << " tracks, " << Fixed(t.value("distance", 0.0), 0) << " " << units << " covered in total</p>\n";
    if (!o.render.empty()) {
      auto img = InlineImage(o.render + "/heatmap_team" + std::to_string(k) + ".png", "--render",
                             "image/png", "heatmap of team " + std::to_string(k + 1), "heat");
      if (!img.ok()) return img.status();
      h << (img->empty() ? "<p class=\"muted\">no heatmap</p>" : *img + Scale(o.analysis + "/heatmap_team" +
                                                                          std::to_string(k) + ".json")) << "\n";
    }
    h << "</div>\n";
  }
  h << "</div>\n";

  // Tracks, not players: a person may be several tracks (lost and found again).
  h << "<h2>Tracks</h2>\n<table><tr><th></th><th class=\"sort\">Id</th><th class=\"sort\">Team</th>"
    << "<th class=\"sort\">On screen</th><th class=\"sort\">Boxes</th>"
    << "<th class=\"sort\">Distance (" << units << ")</th><th class=\"sort\">Avg speed (" << units
    << "/s)</th><th class=\"sort\">Max speed (" << units << "/s)</th></tr>\n";
  for (const auto& t : s.value("tracks", nlohmann::json::array())) {
    std::string thumb;
    if (t.contains("thumb")) {
      auto img = InlineImage(o.analysis + "/" + t["thumb"].get<std::string>(), "--input",
                             "image/jpeg", "player " + std::to_string(t.value("id", 0)), "thumb");
      if (!img.ok()) return img.status();
      thumb = std::move(*img);
    }
    int team = t.value("team", -1);
    double first = t.value("first_time", 0.0);
    h << "<tr class=\"seek\" data-t=\"" << Fixed(first, 2) << "\"><td>" << thumb << "</td><td data-v=\""
      << t.value("id", 0) << "\">" << t.value("id", 0) << "</td><td data-v=\"" << team << "\">";
    if (t.contains("colour"))
      h << "<span class=\"swatch\" style=\"background:" << HtmlEscape(t["colour"].get<std::string>()) << "\"></span>";
    h << (team >= 0 ? std::to_string(team + 1) : "-") << "</td><td data-v=\"" << Fixed(first, 2) << "\">"
      << Clock(first) << "&ndash;" << Clock(t.value("last_time", 0.0)) << "</td><td data-v=\"" << t.value("boxes", 0)
      << "\">" << t.value("boxes", 0) << "</td><td data-v=\"" << Fixed(t.value("distance", 0.0), 2) << "\">"
      << Fixed(t.value("distance", 0.0), 1) << "</td><td data-v=\"" << Fixed(t.value("avg_speed", 0.0), 3) << "\">"
      << Fixed(t.value("avg_speed", 0.0), 2) << "</td><td data-v=\"" << Fixed(t.value("max_speed", 0.0), 3) << "\">"
      << Fixed(t.value("max_speed", 0.0), 2) << "</td></tr>\n";
  }
  h << "</table>\n<p class=\"muted\">Made by nightshift-video.</p>\n<script>" << kScript
    << "</script>\n</body></html>\n";

  NS_RETURN_IF_ERROR(MakeDirs(o.out_dir));
  std::string path = o.out_dir + "/index.html";
  NS_RETURN_IF_ERROR(WriteFileAtomic(path, h.str()));
  return path;
}

}  // namespace ns::video
