// topologycheck answers, with the upstream code that decides it, two questions about a
// Cellar volume's accessible topology (CreateVolume's answer), for each node given:
//   - deletes:     would this node's csi-provisioner (--node-deployment) delete the PV?
//     external-provisioner's own GenerateVolumeNodeAffinity and VolumeIsAccessible,
//     against the node's NodeGetInfo segments, as its deletion path does;
//   - schedulable: would kube-scheduler put a pod of the bound claim there? The
//     volume-binding plugin's check, component-helpers' CheckNodeAffinity, against the
//     node's labels.
//
// Input on stdin: {"topology": [{"k": "v"}, ...],
//                  "nodes": [{"name": "...", "segments": {...}, "labels": {...}}]}
// Output on stdout: {"<name>": {"deletes": bool, "schedulable": bool}, ...}
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/external-provisioner/v6/pkg/controller"
	v1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/storage/volume"
)

type node struct {
	Name     string            `json:"name"`
	Segments map[string]string `json:"segments"`
	Labels   map[string]string `json:"labels"`
}

type input struct {
	Topology []map[string]string `json:"topology"`
	Nodes    []node              `json:"nodes"`
}

type verdict struct {
	Deletes     bool `json:"deletes"`
	Schedulable bool `json:"schedulable"`
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "topologycheck: bad input:", err)
		os.Exit(2)
	}
	var topology []*csi.Topology
	for _, segments := range in.Topology {
		topology = append(topology, &csi.Topology{Segments: segments})
	}
	pv := &v1.PersistentVolume{}
	pv.Spec.NodeAffinity = controller.GenerateVolumeNodeAffinity(topology)

	out := map[string]verdict{}
	for _, n := range in.Nodes {
		deletes, err := controller.VolumeIsAccessible(pv.Spec.NodeAffinity,
			&csi.Topology{Segments: n.Segments})
		if err != nil {
			fmt.Fprintln(os.Stderr, "topologycheck:", n.Name, err)
			os.Exit(1)
		}
		out[n.Name] = verdict{
			Deletes:     deletes,
			Schedulable: volume.CheckNodeAffinity(pv, n.Labels) == nil,
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}
