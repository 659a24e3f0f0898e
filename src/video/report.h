// The `report` step: one self-contained HTML page (index.html) for the team: the
// summary, both teams' heatmaps, a table per player with thumbnails (every image
// inlined as a base64 data URI), and a link to the annotated video.
//
// Reads the analyse step's folder (summary.json, thumbs/) and, optionally, the render
// step's folder (heatmap PNGs; the video link points at <render>/annotated.mp4 as a
// sibling folder "../<render folder name>/annotated.mp4", which is where the engine
// commits it) and a probe.json. Files are read as InputFile (regular files, size
// limits); a missing heatmap or thumbnail is left out of the page.
#pragma once

#include <string>

#include "util/status.h"

namespace ns::video {

struct ReportOptions {
  std::string analysis;
  std::string render;      // optional
  std::string probe;       // optional probe.json or the probe step's folder
  std::string detect;      // optional: the detect step's folder (data quality: detector, model, frames lost)
  std::string video_link;  // optional override of the link to the annotated video
  std::string cost;        // optional: the JSON of `nightshift cost RUN --json` (what the run cost)
  std::string title = "Match report";
  std::string out_dir;
};

Result<std::string> RunReport(const ReportOptions& options);  // the path of index.html

std::string Base64(const std::string& bytes);
std::string HtmlEscape(const std::string& text);

}  // namespace ns::video
