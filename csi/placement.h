// Local-first placement of pods that use Cellar claims. A claim of a `cellar.dev/nodes:
// peers` class may be mounted on its owner's node or on any peering node (which reads a
// replica over the network); Kubernetes cannot prefer one term of a bound PV's node
// affinity over the other, so the admission webhook (node/webhook.h) adds to each new pod
// a preferred node affinity term per owner node of its claims. Everything here is pure:
// documents in (as parsed JSON), patch out; the lookups are the caller's.
#pragma once

#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/status.h"

namespace cellar::csi {

// Walking parsed JSON safely: the member at `path` (maps only), or a null node when a
// step is missing or not a map (yaml-cpp throws on indexing through a missing member).
YAML::Node JsonField(const YAML::Node& node, std::initializer_list<std::string_view> path);
// A scalar's text; "" for anything else (missing, null, a map, a list).
std::string JsonText(const YAML::Node& node);

// The claims of a pod's volumes (spec.volumes[].persistentVolumeClaim.claimName), each
// once, in the pod's order. Inline (ephemeral) CSI volumes and every other kind: none.
std::vector<std::string> ClaimsOfPod(const YAML::Node& pod);

// A PVC's PV: spec.volumeName once status.phase is Bound; nullopt before (a
// WaitForFirstConsumer claim has no volume until its first pod is scheduled).
std::optional<std::string> BoundVolumeOf(const YAML::Node& claim);

// The node holding a PV's data: spec.csi.volumeAttributes["cellar.dev/owner-node"] when
// spec.csi.driver is `driver_name`; nullopt for other drivers and non-CSI volumes.
std::optional<std::string> OwnerNodeOf(const YAML::Node& volume, const std::string& driver_name);

// The owner node of one claim of the pod's namespace; nullopt when it has none to
// prefer (unbound, another driver). An error means the owner could not be learnt.
using ClaimOwnerLookup =
    std::function<Result<std::optional<std::string>>(const std::string& claim)>;

struct OwnerPreference {
  std::string node;
  int weight = 0;  // 1..100
};

// One preference per distinct owner of the pod's claims. The owner of the most claims
// weighs 100, every other owner 100 * its claims / that maximum (at least 1), so the
// scheduler's node affinity score ranks nodes by the claims they hold. Sorted by weight,
// then name. Errors: the first failing lookup's, with the claim named.
Result<std::vector<OwnerPreference>> OwnerPreferences(const YAML::Node& pod,
                                                      const ClaimOwnerLookup& lookup);

// The preferred scheduling term for `preference`, as JSON:
// {"weight":W,"preference":{"matchExpressions":[{"key":"topology.csi.cellar.dev/node",
// "operator":"In","values":[NODE]}]}}
std::string PreferenceTermJson(const OwnerPreference& preference);

// A JSON Patch (RFC 6902) array that appends PreferenceTermJson of each preference to
// spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution, creating
// the missing parents and keeping everything the pod has. Owners the pod already prefers
// with the same term are left out. Empty string when there is nothing to add.
std::string PreferOwnersPatch(const YAML::Node& pod,
                              const std::vector<OwnerPreference>& preferences);

}  // namespace cellar::csi
