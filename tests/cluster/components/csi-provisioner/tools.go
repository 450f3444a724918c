//go:build tools

package tools

import _ "github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner"
