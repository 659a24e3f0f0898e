#include "util/media.h"

#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <set>

#include "util/fs.h"

#if __has_include(<libavformat/avformat.h>)
extern "C" {
#include <libavformat/avformat.h>
}
#define NS_HAVE_AVFORMAT_HEADERS 1
#endif

namespace ns {

namespace {

bool LooksLikeVideo(const std::string& path) {
  static const std::set<std::string> kExt = {"mp4", "mkv", "avi", "mov", "webm", "m4v", "ts",
                                             "mts", "m2ts", "mpg", "mpeg", "wmv", "flv", "3gp"};
  auto dot = path.rfind('.');
  if (dot == std::string::npos || path.find('/', dot) != std::string::npos) return false;
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return kExt.count(ext) > 0;
}

#ifdef NS_HAVE_AVFORMAT_HEADERS
struct AvFormat {
  using OpenFn = int (*)(AVFormatContext**, const char*, const AVInputFormat*, AVDictionary**);
  using InfoFn = int (*)(AVFormatContext*, AVDictionary**);
  using CloseFn = void (*)(AVFormatContext**);
  OpenFn open = nullptr;
  InfoFn info = nullptr;
  CloseFn close = nullptr;
};

const AvFormat* Load() {
  static AvFormat av;
  static std::once_flag once;
  std::call_once(once, [] {
    void* h = nullptr;
    for (const char* name : {"libavformat.so." AV_STRINGIFY(LIBAVFORMAT_VERSION_MAJOR), "libavformat.so"}) {
      h = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (h) break;
    }
    if (!h) return;
    av.open = reinterpret_cast<AvFormat::OpenFn>(::dlsym(h, "avformat_open_input"));
    av.info = reinterpret_cast<AvFormat::InfoFn>(::dlsym(h, "avformat_find_stream_info"));
    av.close = reinterpret_cast<AvFormat::CloseFn>(::dlsym(h, "avformat_close_input"));
    // Estimating a duration is a guess: a file FFmpeg cannot read is not worth
    // a warning on the engine's terminal.
    using LevelFn = void (*)(int);
    for (const char* name : {"libavutil.so." AV_STRINGIFY(LIBAVUTIL_VERSION_MAJOR), "libavutil.so"}) {
      if (void* u = ::dlopen(name, RTLD_NOW | RTLD_LOCAL)) {
        if (auto level = reinterpret_cast<LevelFn>(::dlsym(u, "av_log_set_level"))) level(-8);  // AV_LOG_QUIET
        break;
      }
    }
  });
  return av.open && av.info && av.close ? &av : nullptr;
}
#endif

}  // namespace

int64_t MediaDurationMs(const std::string& path) {
  if (!LooksLikeVideo(path) || !IsRegularFile(path)) return 0;
#ifdef NS_HAVE_AVFORMAT_HEADERS
  const AvFormat* av = Load();
  if (!av) return 0;
  AVFormatContext* ctx = nullptr;
  if (av->open(&ctx, path.c_str(), nullptr, nullptr) < 0) return 0;
  // Most containers say their duration in the header; the others need a look
  // at the first packets.
  if (ctx->duration == AV_NOPTS_VALUE || ctx->duration <= 0) (void)av->info(ctx, nullptr);
  int64_t us = ctx->duration;
  av->close(&ctx);
  return us == AV_NOPTS_VALUE || us <= 0 ? 0 : us / 1000;
#else
  return 0;
#endif
}

}  // namespace ns
