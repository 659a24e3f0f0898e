// Commands against a running server (`--server URL`): the same output as
// against a local root, read through the HTTP API (docs/server.md).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace ns::cli {

// The server's token: $NIGHTSHIFT_TOKEN, else ROOT/server.token ("" if none).
std::string ServerToken(const std::string& root);
// The URL of the server serving `root` right now (its server.json and a live
// pid), or "".
std::string LocalServerUrl(const std::string& root);

// POSTs `body` to `server` + `path` with the token and returns the answer;
// prints the server's reason (or why it could not be reached) and sets *rc
// to an exit code when it fails.
std::optional<nlohmann::json> PostToServer(const std::string& server, const std::string& root_flag,
                                           const std::string& path, const nlohmann::json& body, int* rc);

int RemoteRuns(const InspectOptions& o);
int RemoteShow(const InspectOptions& o);
int RemoteLogs(const InspectOptions& o);
int RemoteCancel(const InspectOptions& o);

}  // namespace ns::cli
