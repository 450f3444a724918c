#include "csi/placement.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/json_string.h"
#include "csi/driver.h"
#include "csi/topology.h"

namespace cellar::csi {

namespace {

constexpr const char* kPreferredPath =
    "/spec/affinity/nodeAffinity/preferredDuringSchedulingIgnoredDuringExecution";

bool Present(const YAML::Node& node) {
  return node.IsDefined() && !node.IsNull();
}

// Whether `term` is exactly the term PreferenceTermJson writes for `node` (any weight).
bool PrefersNode(const YAML::Node& term, const std::string& node) {
  const YAML::Node exprs = JsonField(term, {"preference", "matchExpressions"});
  if (!exprs.IsSequence() || exprs.size() != 1) return false;
  const YAML::Node e = exprs[0];
  const YAML::Node values = JsonField(e, {"values"});
  return JsonText(JsonField(e, {"key"})) == kTopologyKey &&
         JsonText(JsonField(e, {"operator"})) == "In" && values.IsSequence() &&
         values.size() == 1 && JsonText(values[0]) == node;
}

}  // namespace

YAML::Node JsonField(const YAML::Node& node, std::initializer_list<std::string_view> path) {
  YAML::Node at = node;
  for (std::string_view key : path) {
    if (!at.IsDefined() || !at.IsMap()) return YAML::Node();
    YAML::Node next = static_cast<const YAML::Node&>(at)[std::string(key)];
    if (!next.IsDefined()) return YAML::Node();
    at.reset(next);
  }
  return at;
}

std::string JsonText(const YAML::Node& node) {
  if (!node.IsDefined() || !node.IsScalar()) return "";
  return node.Scalar();
}

std::vector<std::string> ClaimsOfPod(const YAML::Node& pod) {
  std::vector<std::string> claims;
  const YAML::Node volumes = JsonField(pod, {"spec", "volumes"});
  if (!volumes.IsSequence()) return claims;
  for (const YAML::Node& v : volumes) {
    std::string claim = JsonText(JsonField(v, {"persistentVolumeClaim", "claimName"}));
    if (claim.empty() || std::find(claims.begin(), claims.end(), claim) != claims.end()) continue;
    claims.push_back(std::move(claim));
  }
  return claims;
}

std::optional<std::string> BoundVolumeOf(const YAML::Node& claim) {
  std::string volume = JsonText(JsonField(claim, {"spec", "volumeName"}));
  if (volume.empty() || JsonText(JsonField(claim, {"status", "phase"})) != "Bound")
    return std::nullopt;
  return volume;
}

std::optional<std::string> OwnerNodeOf(const YAML::Node& volume, const std::string& driver_name) {
  const YAML::Node csi = JsonField(volume, {"spec", "csi"});
  if (JsonText(JsonField(csi, {"driver"})) != driver_name) return std::nullopt;
  std::string owner = JsonText(JsonField(csi, {"volumeAttributes", kOwnerNodeKey}));
  if (owner.empty()) return std::nullopt;
  return owner;
}

Result<std::vector<OwnerPreference>> OwnerPreferences(const YAML::Node& pod,
                                                      const ClaimOwnerLookup& lookup) {
  std::map<std::string, int> claims_per_owner;
  for (const std::string& claim : ClaimsOfPod(pod)) {
    auto owner = lookup(claim);
    if (!owner.ok()) return owner.status().WithContext("claim " + claim);
    if (owner->has_value()) ++claims_per_owner[**owner];
  }
  int most = 0;
  for (const auto& [node, count] : claims_per_owner) most = std::max(most, count);
  std::vector<OwnerPreference> out;
  for (const auto& [node, count] : claims_per_owner) {
    out.push_back({node, std::max(1, 100 * count / most)});
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.weight > b.weight;  // names stay sorted within a weight (from the map)
  });
  return out;
}

std::string PreferenceTermJson(const OwnerPreference& preference) {
  return fmt::format(
      "{{\"weight\":{},\"preference\":{{\"matchExpressions\":[{{\"key\":{},\"operator\":\"In\","
      "\"values\":[{}]}}]}}}}",
      preference.weight, JsonString(kTopologyKey), JsonString(preference.node));
}

std::string PreferOwnersPatch(const YAML::Node& pod,
                              const std::vector<OwnerPreference>& preferences) {
  const YAML::Node affinity = JsonField(pod, {"spec", "affinity"});
  const YAML::Node node_affinity = JsonField(affinity, {"nodeAffinity"});
  const YAML::Node preferred =
      JsonField(node_affinity, {"preferredDuringSchedulingIgnoredDuringExecution"});
  const bool has_list = Present(preferred) && preferred.IsSequence();

  std::vector<std::string> terms;
  std::set<std::string> seen;
  for (const OwnerPreference& p : preferences) {
    if (!seen.insert(p.node).second) continue;
    if (has_list && std::any_of(preferred.begin(), preferred.end(),
                                [&](const YAML::Node& t) { return PrefersNode(t, p.node); })) {
      continue;
    }
    terms.push_back(PreferenceTermJson(p));
  }
  if (terms.empty()) return "";

  std::string ops;
  auto add = [&ops](std::string_view path, std::string_view value) {
    ops += fmt::format("{}{{\"op\":\"add\",\"path\":{},\"value\":{}}}", ops.empty() ? "" : ",",
                       JsonString(path), value);
  };
  if (has_list) {
    for (const std::string& t : terms) add(std::string(kPreferredPath) + "/-", t);
    return "[" + ops + "]";
  }
  // The first missing parent is added whole, with the list inside it. "add" on a member
  // that is present but null replaces it, which is what a null parent needs.
  std::string list = "[" + fmt::format("{}", fmt::join(terms, ",")) + "]";
  if (Present(node_affinity) && node_affinity.IsMap()) {
    add(kPreferredPath, list);
  } else if (Present(affinity) && affinity.IsMap()) {
    add("/spec/affinity/nodeAffinity",
        "{\"preferredDuringSchedulingIgnoredDuringExecution\":" + list + "}");
  } else {
    add("/spec/affinity",
        "{\"nodeAffinity\":{\"preferredDuringSchedulingIgnoredDuringExecution\":" + list + "}}");
  }
  return "[" + ops + "]";
}

}  // namespace cellar::csi
