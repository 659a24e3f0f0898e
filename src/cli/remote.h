// Commands against a running server (`--server URL`): the same output as
// against a local root, read through the HTTP API (docs/server.md).
#pragma once

#include <string>

#include "cli/commands.h"

namespace ns::cli {

// The server's token: $NIGHTSHIFT_TOKEN, else ROOT/server.token ("" if none).
std::string ServerToken(const std::string& root);
// The URL of the server serving `root` right now (its server.json and a live
// pid), or "".
std::string LocalServerUrl(const std::string& root);

int RemoteRuns(const InspectOptions& o);
int RemoteShow(const InspectOptions& o);
int RemoteLogs(const InspectOptions& o);
int RemoteCancel(const InspectOptions& o);

}  // namespace ns::cli
