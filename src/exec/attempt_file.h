// The files an attempt leaves for an executor that runs it elsewhere (a Slurm
// node): the attempt's spec, read by `nightshift task-exec`, and the result
// record task-exec writes when the attempt ends. Both are JSON; strings that
// are not UTF-8 (argv and environment may hold any bytes) are stored as
// {"hex": "..."} so that they arrive exactly as they left.
//
// Pure functions; thread-safe.
#pragma once

#include <string>

#include "exec/executor.h"
#include "util/status.h"

namespace ns {

struct AttemptRecord {
  std::string uid;  // the attempt's uid, so a stray record is never taken for another
  AttemptResult result;  // outcome as the node saw it (id unused)
  std::string node;      // host name of the node
  std::string job_id;    // $SLURM_JOB_ID, "" outside Slurm
  int restart_count = 0;  // $SLURM_RESTART_COUNT
  // The wrapper was told to stop from outside (SIGTERM, SIGINT): a cancel, a
  // preemption notice or Slurm's time limit; the executor decides which.
  int interrupted_by = 0;
};

std::string AttemptSpecToJson(const AttemptSpec& spec);
Result<AttemptSpec> AttemptSpecFromJson(const std::string& text);

std::string AttemptRecordToJson(const AttemptRecord& r);
Result<AttemptRecord> AttemptRecordFromJson(const std::string& text);

AttemptOutcome OutcomeFromName(const std::string& name, bool* ok);

}  // namespace ns
