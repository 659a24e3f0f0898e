#include "video/concat.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
}

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/fs.h"
#include "video/av_error.h"
#include "video/av_input.h"
#include "video/input_file.h"

namespace ns::video {
namespace {

struct Piece {
  std::string dir;
  int64_t first_frame = 0;
  int64_t owned = 0;         // frames of the video this piece stands for
  int64_t frames = 0;        // frames it holds (fewer when some did not decode)
  int64_t video_frames = -1; // frames of the whole video, -1 if unknown
  double start_time = -1;    // seconds into the video where it starts; -1 if not said
};

constexpr char kRerun[] = "; run `nightshift-video render --index` for that segment again";

Result<Piece> ReadPiece(const std::string& dir) {
  Piece p;
  p.dir = dir;
  auto text = ReadSmallFile(dir + "/render.json", "--input");
  if (!text.ok()) return text.status();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  auto integer = [&](const char* key, int64_t* out) {
    if (!j.is_object() || !j.contains(key) || !j[key].is_number_integer()) return false;
    *out = j[key].get<int64_t>();
    return true;
  };
  if (!integer("first_frame", &p.first_frame) || !integer("frames", &p.frames) ||
      !integer("owned_frames", &p.owned) || !integer("video_frames", &p.video_frames) || p.first_frame < 0)
    return Status::Invalid(dir + "/render.json: not written by this render (needs first_frame, frames, owned_frames "
                                 "and video_frames)" + kRerun);
  if (!PathExists(dir + "/annotated.mp4")) return Status::Invalid(dir + ": render.json but no annotated.mp4" + kRerun);
  if (j.contains("start_time") && j["start_time"].is_number() && j["start_time"].get<double>() >= 0) {
    p.start_time = j["start_time"].get<double>();
  }
  return p;
}

Result<std::vector<Piece>> FindPieces(const std::string& input) {
  NS_RETURN_IF_ERROR(CheckFolder(input, "--input", "the render step's folder"));
  auto dirs = FoldersHolding(input, "render.json");
  if (!dirs.ok()) return dirs.status();
  std::vector<Piece> pieces;
  for (const auto& dir : *dirs) {
    auto p = ReadPiece(dir);
    if (!p.ok()) return p.status();
    pieces.push_back(*p);
  }
  if (pieces.empty())
    return Status::Invalid(input + ": no rendered pieces (render.json) in it or its folders; run render first");
  std::sort(pieces.begin(), pieces.end(), [](const Piece& a, const Piece& b) { return a.first_frame < b.first_frame; });
  // The pieces must cover the video from frame 0 to its end, each once.
  int64_t next = 0;
  for (const auto& p : pieces) {
    if (p.first_frame != next) {
      if (next == 0)
        return Status::Invalid(p.dir + ": the first piece starts at frame " + std::to_string(p.first_frame) +
                               ", not 0 (the first segment is missing)" + kRerun);
      return Status::Invalid(p.dir + ": starts at frame " + std::to_string(p.first_frame) +
                             " but the piece before ends at frame " + std::to_string(next) +
                             (p.first_frame > next ? " (a segment is missing)" : " (pieces overlap)") + kRerun);
    }
    next = p.first_frame + p.owned;
  }
  const Piece& last = pieces.back();
  if (last.video_frames >= 0 && next != last.video_frames)
    return Status::Invalid(last.dir + ": the last piece ends at frame " + std::to_string(next) + " but the video has " +
                           std::to_string(last.video_frames) + " (the last segment is missing)" + kRerun);
  return pieces;
}

struct Output {
  AVFormatContext* fmt = nullptr;
  bool header = false;
  ~Output() {
    if (!fmt) return;
    if (fmt->pb) avio_closep(&fmt->pb);  // only on a failure (CloseOutput closed it otherwise)
    avformat_free_context(fmt);
  }
};

bool SameParameters(const AVCodecParameters* a, const AVCodecParameters* b) {
  return a->codec_id == b->codec_id && a->width == b->width && a->height == b->height && a->format == b->format &&
         a->extradata_size == b->extradata_size &&
         (a->extradata_size == 0 || std::memcmp(a->extradata, b->extradata, a->extradata_size) == 0);
}

}  // namespace

Result<ConcatSummary> RunConcat(const ConcatOptions& o) {
  if (o.out_dir.empty()) return Status::Invalid("no output folder: pass --out or set NIGHTSHIFT_OUTPUT_DIR");
  auto pieces = FindPieces(o.input);
  if (!pieces.ok()) return pieces.status();
  NS_RETURN_IF_ERROR(MakeDirs(o.out_dir));
  const std::string final_path = o.out_dir + "/annotated.mp4";
  const std::string out_path = final_path + ".partial";  // renamed once complete

  Output out;
  AVStream* out_stream = nullptr;
  AVCodecParameters* first_par = avcodec_parameters_alloc();
  AVPacket* pkt = av_packet_alloc();
  if (!first_par || !pkt) return Status::Internal(out_path + ": out of memory");
  struct Free {
    AVCodecParameters** par;
    AVPacket** pkt;
    ~Free() {
      avcodec_parameters_free(par);
      av_packet_free(pkt);
    }
  } free_later{&first_par, &pkt};

  ConcatSummary sum;
  int64_t offset = 0;                     // output ticks where the current piece starts
  int64_t last_dts = AV_NOPTS_VALUE;      // of the packet written last
  for (const Piece& piece : *pieces) {
    std::string path = piece.dir + "/annotated.mp4";
    auto in = AvInput::Open(path, "--input");
    if (!in.ok()) return in.status();
    AVFormatContext* in_fmt = (*in)->format();
    int rc = avformat_find_stream_info(in_fmt, nullptr);
    if (rc < 0) return AvStatus(rc, "cannot read", path);
    int vs = av_find_best_stream(in_fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    if (vs < 0) return Status::Invalid(path + ": no video stream");
    AVStream* is = in_fmt->streams[vs];
    if (!out.fmt) {
      rc = avformat_alloc_output_context2(&out.fmt, nullptr, "mp4", out_path.c_str());
      if (rc < 0 || !out.fmt) return AvStatus(rc, "cannot create the MP4 muxer", out_path);
      out_stream = avformat_new_stream(out.fmt, nullptr);
      if (!out_stream) return Status::Internal(out_path + ": out of memory");
      rc = avcodec_parameters_copy(out_stream->codecpar, is->codecpar);
      if (rc >= 0) rc = avcodec_parameters_copy(first_par, is->codecpar);
      if (rc < 0) return AvStatus(rc, "cannot copy codec parameters", path);
      out_stream->codecpar->codec_tag = 0;
      out_stream->time_base = is->time_base;
      out_stream->avg_frame_rate = is->avg_frame_rate;
      rc = avio_open(&out.fmt->pb, out_path.c_str(), AVIO_FLAG_WRITE);
      if (rc < 0) return AvStatus(rc, "cannot write", out_path);
      AVDictionary* opts = nullptr;
      av_dict_set(&opts, "movflags", "+faststart", 0);
      rc = avformat_write_header(out.fmt, &opts);
      av_dict_free(&opts);
      if (rc < 0) return AvStatus(rc, "cannot write the MP4 header", out_path);
      out.header = true;
    } else if (!SameParameters(first_par, is->codecpar)) {
      return Status::Invalid(path + ": codec, size or codec headers differ from the first piece's (" +
                             (*pieces)[0].dir + "); render every segment with the same nightshift-video");
    }
    // The piece's first frame lands at its time in the source (render.json's
    // start_time, from the segment index: a variable frame rate keeps its
    // timing across cuts), else where the previous piece ended; never before it.
    int64_t start = is->start_time == AV_NOPTS_VALUE
                        ? 0
                        : av_rescale_q(is->start_time, is->time_base, out_stream->time_base);
    if (piece.start_time >= 0 && (*pieces)[0].start_time >= 0) {
      int64_t at = av_rescale_q(std::llround((piece.start_time - (*pieces)[0].start_time) * 1e6),
                                AVRational{1, 1000000}, out_stream->time_base);
      offset = std::max(offset, at);
    }
    int64_t shift = offset - start;
    int64_t end = offset;
    while ((rc = av_read_frame(in_fmt, pkt)) >= 0) {
      if (pkt->stream_index != vs) {
        av_packet_unref(pkt);
        continue;
      }
      av_packet_rescale_ts(pkt, is->time_base, out_stream->time_base);
      if (pkt->pts != AV_NOPTS_VALUE) {
        pkt->pts += shift;
        end = std::max(end, pkt->pts + std::max<int64_t>(pkt->duration, 1));
      }
      if (pkt->dts != AV_NOPTS_VALUE) {
        pkt->dts += shift;
        if (last_dts != AV_NOPTS_VALUE && pkt->dts <= last_dts) {
          av_packet_unref(pkt);
          return Status::Invalid(path + ": its decode timestamps run back into the previous piece's "
                                 "(encoded with different B-frame settings?)" + std::string(kRerun));
        }
        last_dts = pkt->dts;
      }
      pkt->stream_index = 0;
      pkt->pos = -1;
      rc = av_interleaved_write_frame(out.fmt, pkt);
      if (rc < 0) return AvStatus(rc, "cannot write", out_path);
    }
    NS_RETURN_IF_ERROR(ReadFrameStatus(rc, in_fmt, path));
    offset = end;
    sum.frames += piece.frames;
    ++sum.pieces;
  }
  int rc = av_write_trailer(out.fmt);
  if (rc < 0) return AvStatus(rc, "cannot finish", out_path);
  NS_RETURN_IF_ERROR(CloseOutput(out.fmt, out_path));  // a failed close leaves the .partial file
  if (std::rename(out_path.c_str(), final_path.c_str()) != 0)
    return Status::IoError(final_path + ": cannot rename the finished video into place");

  // Heatmaps are drawn by the piece that starts the video.
  const Piece& first = pieces->front();
  for (const char* name : {"heatmap_all.png", "heatmap_team0.png", "heatmap_team1.png"}) {
    if (!PathExists(first.dir + "/" + name)) continue;
    auto bytes = ReadSmallFile(first.dir + "/" + name, "--input");
    if (!bytes.ok()) return bytes.status();
    NS_RETURN_IF_ERROR(WriteFileAtomic(o.out_dir + "/" + name, *bytes));
    ++sum.heatmaps;
  }
  nlohmann::json pieces_json = nlohmann::json::array();
  for (const Piece& p : *pieces) {
    pieces_json.push_back({{"folder", BaseName(p.dir)}, {"first_frame", p.first_frame}, {"owned_frames", p.owned},
                           {"frames", p.frames}});
    sum.frames_lost += p.owned - p.frames;
  }
  nlohmann::json meta = {{"pieces", pieces_json}, {"frames", sum.frames}, {"frames_lost", sum.frames_lost},
                         {"heatmaps", sum.heatmaps}};
  NS_RETURN_IF_ERROR(WriteFileAtomic(o.out_dir + "/concat.json", meta.dump(2) + "\n"));
  return sum;
}

}  // namespace ns::video
