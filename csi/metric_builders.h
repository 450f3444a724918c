// Small helpers to build prometheus-cpp MetricFamily values by hand, for collectors that
// read their numbers at scrape time (the store's books, the FUSE counters) instead of
// keeping prometheus-cpp metric objects up to date.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include <prometheus/metric_family.h>

namespace cellar::csi {

inline prometheus::MetricFamily NewFamily(std::string name, std::string help,
                                          prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

using MetricLabels = std::initializer_list<std::pair<const char*, std::string>>;

// Appends one sample to a gauge or counter family.
inline void AddSample(prometheus::MetricFamily& family, MetricLabels labels, double value) {
  prometheus::ClientMetric m;
  for (const auto& [name, v] : labels) m.label.push_back({name, v});
  if (family.type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  family.metric.push_back(std::move(m));
}

}  // namespace cellar::csi
