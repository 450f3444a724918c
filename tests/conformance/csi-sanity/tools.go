//go:build tools

// Package tools pins csi-sanity, kubernetes-csi's conformance suite for CSI drivers,
// so that tests/conformance/csi-sanity.sh builds the same version everywhere.
package tools

import (
	_ "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity"
)
