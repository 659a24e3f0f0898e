#include "video/segment.h"

extern "C" {
#include <libavformat/avformat.h>
}

#include <cstdio>
#include <cstring>
#include <memory>

#include "util/fs.h"
#include "video/av_error.h"
#include "video/av_input.h"
#include "video/decoder.h"

namespace ns::video {
namespace {

struct Packet {
  int64_t pts = 0;
  int64_t dts = 0;
  bool key = false;
};

// One open output segment (matroska, stream copy of one video stream).
class SegmentWriter {
 public:
  ~SegmentWriter() {
    if (out_ && opened_) avio_closep(&out_->pb);  // only when Finish failed or never ran
    avformat_free_context(out_);
  }

  Status Open(const std::string& path, const AVStream* ist) {
    path_ = path;
    ist_tb_ = ist->time_base;
    int rc = avformat_alloc_output_context2(&out_, nullptr, "matroska", path.c_str());
    if (rc < 0 || !out_) return AvStatus(rc, "cannot create muxer", path);
    // The same input gives the same bytes (no muxing date, no random segment
    // uid): downstream fingerprints, caching and comparisons depend on it.
    out_->flags |= AVFMT_FLAG_BITEXACT;
    ost_ = avformat_new_stream(out_, nullptr);
    if (!ost_) return Status::Internal("out of memory");
    rc = avcodec_parameters_copy(ost_->codecpar, ist->codecpar);
    if (rc < 0) return AvStatus(rc, "cannot copy codec parameters", path);
    ost_->codecpar->codec_tag = 0;  // let matroska pick its own tag
    ost_->time_base = ist->time_base;
    // Keep the rotation of phone videos.
    size_t side_size = 0;
    const uint8_t* matrix = av_stream_get_side_data(ist, AV_PKT_DATA_DISPLAYMATRIX, &side_size);
    if (matrix && side_size > 0) {
      uint8_t* dst = av_stream_new_side_data(ost_, AV_PKT_DATA_DISPLAYMATRIX, side_size);
      if (dst) memcpy(dst, matrix, side_size);
    }
    rc = avio_open(&out_->pb, path.c_str(), AVIO_FLAG_WRITE);
    if (rc < 0) return AvStatus(rc, "cannot write", path);
    opened_ = true;
    rc = avformat_write_header(out_, nullptr);
    if (rc < 0) {
      return Status::Invalid(path + ": codec " + avcodec_get_name(ist->codecpar->codec_id) +
                             " cannot be stream-copied into matroska (" + AvErrorText(rc) + ")");
    }
    return Status::Ok();
  }

  // Writes a copy of `pkt` (the caller keeps its packet); `*pts` gets its
  // presentation time in the file's own ticks.
  Status Write(const AVPacket* pkt, int64_t* pts) {
    AVPacket* copy = av_packet_clone(pkt);
    if (!copy) return Status::Internal("out of memory");
    copy->stream_index = 0;
    copy->pos = -1;
    av_packet_rescale_ts(copy, ist_tb_, ost_->time_base);
    *pts = copy->pts != AV_NOPTS_VALUE ? copy->pts : copy->dts;
    int rc = av_interleaved_write_frame(out_, copy);
    av_packet_free(&copy);
    if (rc < 0) return AvStatus(rc, "cannot write packet", path_);
    return Status::Ok();
  }

  // Writes the trailer and closes the file; either failing (a full disk) is an
  // error, not a truncated segment.
  Status Finish() {
    int rc = av_write_trailer(out_);
    if (rc < 0) return AvStatus(rc, "cannot finish", path_);
    opened_ = false;
    return CloseOutput(out_, path_);
  }

 private:
  std::string path_;
  AVRational ist_tb_{1, 1};
  AVFormatContext* out_ = nullptr;
  AVStream* ost_ = nullptr;
  bool opened_ = false;
};

// Pass 2: reads the input once more and writes every planned segment; a packet
// may go to two segments (overlap, or an open GOP's leading pictures). Fills
// `start_pts` with each segment's keyframe time in its file's ticks.
Status WriteSegments(const std::string& input, int stream_index, const std::string& out_dir,
                     const std::vector<SegmentPlan>& plans, std::vector<int64_t>* start_pts) {
  auto in = AvInput::Open(input, "--input");
  if (!in.ok()) return in.status();
  AVFormatContext* fmt = (*in)->format();
  int rc = avformat_find_stream_info(fmt, nullptr);
  if (rc < 0) return AvStatus(rc, "cannot read stream information", input);
  const AVStream* ist = fmt->streams[stream_index];

  start_pts->assign(plans.size(), AV_NOPTS_VALUE);
  std::vector<std::unique_ptr<SegmentWriter>> open(plans.size());
  std::vector<bool> done(plans.size(), false);
  AVPacket* pkt = av_packet_alloc();
  struct PktGuard {
    AVPacket** p;
    ~PktGuard() { av_packet_free(p); }
  } pkt_guard{&pkt};
  size_t i = 0;
  size_t first_open = 0;  // plans before this one are finished
  while (first_open < plans.size() && (rc = av_read_frame(fmt, pkt)) >= 0) {
    if (pkt->stream_index != stream_index) {
      av_packet_unref(pkt);
      continue;
    }
    for (size_t k = first_open; k < plans.size() && plans[k].begin <= i; ++k) {
      if (i >= plans[k].file_end) continue;
      if (!open[k]) {
        char name[32];
        std::snprintf(name, sizeof name, "seg_%04zu.mkv", k);
        open[k] = std::make_unique<SegmentWriter>();
        NS_RETURN_IF_ERROR(open[k]->Open(out_dir + "/" + name, ist));
      }
      int64_t pts = AV_NOPTS_VALUE;
      NS_RETURN_IF_ERROR(open[k]->Write(pkt, &pts));
      if (i == plans[k].begin) (*start_pts)[k] = pts;
    }
    av_packet_unref(pkt);
    ++i;
    for (size_t k = first_open; k < plans.size() && plans[k].begin < i; ++k) {
      if (done[k] || plans[k].file_end > i) continue;
      if (open[k]) NS_RETURN_IF_ERROR(open[k]->Finish());
      open[k].reset();
      done[k] = true;
    }
    while (first_open < plans.size() && done[first_open]) ++first_open;
  }
  if (first_open < plans.size()) NS_RETURN_IF_ERROR(ReadFrameStatus(rc, fmt, input));
  for (size_t k = first_open; k < plans.size(); ++k) {
    if (done[k]) continue;
    if (!open[k]) return Status::IoError(input + ": the file changed while segmenting");
    NS_RETURN_IF_ERROR(open[k]->Finish());
  }
  return Status::Ok();
}

}  // namespace

Result<SegmentIndex> SegmentVideo(const std::string& input, const std::string& out_dir,
                                  const SegmentOptions& options) {
  if (options.seconds <= 0) return Status::Invalid("--seconds must be > 0");
  if (options.overlap < 0) return Status::Invalid("--overlap must be >= 0");
  Decoder::Options dopt;
  dopt.convert = false;
  dopt.flag = "--input";
  auto dec = Decoder::Open(input, dopt);
  if (!dec.ok()) return dec.status();
  const StreamInfo& info = (*dec)->info();
  AVFormatContext* fmt = (*dec)->format_context();

  // Pass 1: the packets of the video stream, in demux order.
  std::vector<Packet> packets;
  AVPacket* pkt = av_packet_alloc();
  int64_t first_pts = AV_NOPTS_VALUE;
  int rc;
  while ((rc = av_read_frame(fmt, pkt)) >= 0) {
    if (pkt->stream_index == info.stream_index) {
      Packet p;
      p.pts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
      p.dts = pkt->dts;
      p.key = pkt->flags & AV_PKT_FLAG_KEY;
      if (p.pts != AV_NOPTS_VALUE && (first_pts == AV_NOPTS_VALUE || p.pts < first_pts))
        first_pts = p.pts;
      packets.push_back(p);
    }
    av_packet_unref(pkt);
  }
  av_packet_free(&pkt);
  NS_RETURN_IF_ERROR(ReadFrameStatus(rc, fmt, input));
  if (packets.empty()) return Status::Invalid(input + ": no video packets");

  double fps = info.avg_fps > 0 ? info.avg_fps : info.header_fps;
  if (fps <= 0) fps = 25;
  std::vector<PacketMark> marks;
  for (size_t i = 0; i < packets.size(); ++i) {
    PacketMark m;
    m.key = packets[i].key;
    m.time = packets[i].pts != AV_NOPTS_VALUE && first_pts != AV_NOPTS_VALUE
                 ? (packets[i].pts - first_pts) * info.time_base
                 : i / fps;
    marks.push_back(m);
  }
  std::vector<SegmentPlan> plans = PlanSegments(marks, options.seconds, options.overlap);

  NS_RETURN_IF_ERROR(MakeDirs(out_dir));
  SegmentIndex index;
  index.source = AbsolutePath(input);
  index.fps = fps;
  bool swap = info.rotation == 90 || info.rotation == 270;
  index.width = swap ? info.height : info.width;
  index.height = swap ? info.width : info.height;
  index.rotation = info.rotation;
  int64_t global = 0;
  for (size_t k = 0; k < plans.size(); ++k) {
    const SegmentPlan& p = plans[k];
    char name[32];
    std::snprintf(name, sizeof name, "seg_%04zu.mkv", k);
    SegmentEntry e;
    e.file = name;
    e.first_frame = global;
    e.frame_count = p.owned;
    e.overlap_frames = p.overlap;
    e.leading_frames = p.leading;
    // The keyframe opening a segment is its first frame shown; an open GOP's
    // leading pictures after it are shown earlier and belong to the previous one.
    e.start_time = marks[p.begin].time;
    double end_time = k + 1 < plans.size() ? marks[plans[k + 1].begin].time : 0;
    if (k + 1 == plans.size()) {
      double last = 0;
      for (size_t i = p.begin; i < p.file_end; ++i) last = std::max(last, marks[i].time);
      end_time = last + 1.0 / fps;
    }
    e.duration = end_time - e.start_time;
    global += e.frame_count;
    index.segments.push_back(e);
  }
  index.frame_count = global;
  std::vector<int64_t> start_pts;
  NS_RETURN_IF_ERROR(WriteSegments(input, info.stream_index, out_dir, plans, &start_pts));
  for (size_t k = 1; k < plans.size(); ++k) {  // the first segment shows everything it decodes
    if (start_pts[k] == AV_NOPTS_VALUE) continue;
    index.segments[k].start_pts = start_pts[k];
    index.segments[k].has_start_pts = true;
  }
  NS_RETURN_IF_ERROR(WriteFileAtomic(out_dir + "/segments.json", ToJson(index).dump(2) + "\n"));
  return index;
}

}  // namespace ns::video
