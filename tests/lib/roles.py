"""The parties of one node, wired to a running `cellar node`."""

from __future__ import annotations

from pathlib import Path

import grpc

from tests.lib.kubelet import Kubelet
from tests.lib.provisioner import Provisioner


def attach(channel: grpc.Channel, kubelet_root: Path, node_name: str, calls: list
           ) -> tuple[Kubelet, Provisioner]:
    """What happens once the plugin answers Probe: the kubelet registers it (the
    driver's name, its node id and topology), then csi-provisioner makes its start-up
    calls. Both record their RPCs in `calls`, in order."""
    kubelet = Kubelet(channel, kubelet_root, node_name, calls)
    kubelet.register()
    provisioner = Provisioner(channel, calls)
    provisioner.connect()
    return kubelet, provisioner
