#include "csi/node_metrics.h"

#include "csi/metric_builders.h"

namespace cellar::csi {

using prometheus::MetricFamily;
using prometheus::MetricType;

std::vector<MetricFamily> NodeFamilies(const cellar::admin::v1::NodeStatus& s) {
  std::vector<MetricFamily> out;
  auto node_gauge = [&](const char* name, const char* help, double value) {
    out.push_back(NewFamily(name, help, MetricType::Gauge));
    AddSample(out.back(), {}, value);
  };
  node_gauge("cellar_node_capacity_bytes", "Memory this node may hand out to volumes (--capacity)",
             static_cast<double>(s.capacity_bytes()));
  node_gauge("cellar_node_allocated_bytes", "Sum of the capacities of the node's volumes",
             static_cast<double>(s.allocated_bytes()));
  node_gauge("cellar_node_free_bytes", "Capacity not yet handed out to volumes",
             static_cast<double>(s.available_bytes()));
  node_gauge("cellar_node_used_bytes", "Memory the files of all volumes take",
             static_cast<double>(s.used_bytes()));
  node_gauge("cellar_node_volumes", "Volumes the node holds", s.volumes_size());
  node_gauge("cellar_node_healthy", "1 when the node answers Probe ready, else 0",
             s.healthy() ? 1 : 0);
  node_gauge("cellar_node_start_time_seconds", "When this cellar node process started serving",
             static_cast<double>(s.started_unix()));
  out.push_back(NewFamily("cellar_node_info",
                          "Always 1; the labels say what runs and how it started (fresh, "
                          "takeover of the fd holder's connection, or handover)",
                          MetricType::Gauge));
  AddSample(out.back(),
            {{"version", s.version()}, {"io_mode", s.io_mode()}, {"start_kind", s.start_kind()}},
            1);

  auto capacity =
      NewFamily("cellar_volume_capacity_bytes", "A volume's capacity", MetricType::Gauge);
  auto used =
      NewFamily("cellar_volume_used_bytes", "Memory a volume's files take", MetricType::Gauge);
  auto files = NewFamily("cellar_volume_files",
                         "Inodes a volume uses: files, directories and links, its root included",
                         MetricType::Gauge);
  auto pubs =
      NewFamily("cellar_volume_publications", "Pods' mounts of a volume", MetricType::Gauge);
  auto abnormal = NewFamily("cellar_volume_abnormal",
                            "1 when the volume's condition is abnormal (e.g. its memory was "
                            "lost at a reboot)",
                            MetricType::Gauge);
  double pubs_abnormal = 0;
  double pubs_lost = 0;
  for (const auto& v : s.volumes()) {
    MetricLabels labels = {
        {"volume_id", v.id()}, {"pvc_namespace", v.pvc_namespace()}, {"pvc_name", v.pvc_name()}};
    AddSample(capacity, labels, static_cast<double>(v.capacity_bytes()));
    AddSample(used, labels, static_cast<double>(v.used_bytes()));
    AddSample(files, labels, static_cast<double>(v.used_inodes()));
    AddSample(pubs, labels, v.publications_size());
    AddSample(abnormal, labels, v.abnormal() ? 1 : 0);
    for (const auto& p : v.publications()) {
      pubs_abnormal += p.abnormal() ? 1 : 0;
      pubs_lost += p.connection_lost() ? 1 : 0;
    }
  }
  for (auto* f : {&capacity, &used, &files, &pubs, &abnormal}) out.push_back(std::move(*f));
  node_gauge("cellar_publications_abnormal",
             "Pods' mounts whose condition is abnormal (as NodeGetVolumeStats reports)",
             pubs_abnormal);
  node_gauge("cellar_publications_connection_lost",
             "Pods' mounts whose FUSE connection was lost (daemon and fd holder both died); "
             "their containers see ENOTCONN until the pod is recreated",
             pubs_lost);
  return out;
}

}  // namespace cellar::csi
