#include "csi/status_format.h"

#include <ctime>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include "common/size.h"

namespace cellar::csi {

namespace admin = cellar::admin::v1;

namespace {

std::string UtcTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string OrDash(const std::string& ns, const std::string& name) {
  if (name.empty()) return "-";
  return ns.empty() ? name : ns + "/" + name;
}

}  // namespace

std::string FormatStatusText(const admin::NodeStatus& s) {
  std::string out;
  out += fmt::format("node {} ({} {}), io mode {}, {}\n", s.node_id(), s.driver_name(), s.version(),
                     s.io_mode(), s.healthy() ? "healthy" : "UNHEALTHY: " + s.health_message());
  out += fmt::format("started {} ({})\n", UtcTime(s.started_unix()), s.start_kind());
  out += fmt::format("capacity {}, allocated {}, free {}, used {} by {} volume{}\n",
                     FormatSize(s.capacity_bytes()), FormatSize(s.allocated_bytes()),
                     FormatSize(s.available_bytes()), FormatSize(s.used_bytes()), s.volumes_size(),
                     s.volumes_size() == 1 ? "" : "s");
  if (s.volumes().empty()) return out;
  out += fmt::format("\n{:<36}  {:<28}  {:>10}  {:>10}  {:>6}  {}\n", "VOLUME", "PVC", "SIZE",
                     "USED", "FILES", "CONDITION");
  for (const admin::VolumeStatus& v : s.volumes()) {
    std::string claim = v.ephemeral()             ? "(inline) " + v.name()
                        : !v.replica_of().empty() ? "(replica of " + v.replica_of() + ")"
                                                  : OrDash(v.pvc_namespace(), v.pvc_name());
    out += fmt::format("{:<36}  {:<28}  {:>10}  {:>10}  {:>6}  {}\n", v.id(), claim,
                       FormatSize(v.capacity_bytes()), FormatSize(v.used_bytes()), v.used_inodes(),
                       v.condition());
    for (const admin::PublicationStatus& p : v.publications()) {
      out += fmt::format("  published {} at {} for pod {}: {}\n", p.readonly() ? "ro" : "rw",
                         p.target_path(), OrDash(p.pod_namespace(), p.pod_name()), p.condition());
    }
  }
  return out;
}

Result<std::string> FormatStatusJson(const admin::NodeStatus& s) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  auto st = google::protobuf::util::MessageToJsonString(s, &out, options);
  if (!st.ok()) return Error(Code::kInternal, "status as JSON: {}", st.ToString());
  return out;
}

}  // namespace cellar::csi
