"""The unpacked test/debian:bookworm, entry by entry, against what podman's overlay storage
makes of the same image (podman pull from the plain registry, then its overlay diff dirs)."""

import json
import os

import pytest
from layertools import diff
from registrykit import PLAIN, PODMAN, Podman, layer_snapshot

pytestmark = pytest.mark.skipif(PODMAN is None, reason="podman is not installed")

# Where the two differ on purpose (each checked below, not skipped):
# - layer 3 has "bin/fixture-through-dirlink" and no "bin/" entry, while layer 1 has
#   "bin -> usr/bin".  podman writes the entry into a new "bin/" directory of the layer
#   (whose upper "bin" then hides the lower symlink and with it all of /usr/bin in the
#   merged tree); sangja resolves the path through the parent layers, as an unpack into one
#   tree (umoci, GNU tar) does, and writes "usr/bin/fixture-through-dirlink".
# - the layer directory itself: podman leaves its diff dir at 0555 and does not apply a "./"
#   entry to it; sangja applies layer 1's "./" entry (0755).  A container never sees either
#   (the overlay's root takes its attributes from the container's upper dir).
DIRLINK_ENTRY = "bin/fixture-through-dirlink"


def podman_layers(root):
    """diff_id -> podman's overlay diff dir."""
    with open(os.path.join(root, "overlay-layers", "layers.json")) as f:
        layers = json.load(f)
    return {ly["diff-digest"]: os.path.join(root, "overlay", ly["id"], "diff") for ly in layers}


def test_debian_layers_equal_podman_overlay(sj, fixtures, tmp_path):
    fixtures.registry("plain")
    ref = f"{PLAIN}/test/debian:bookworm"
    pm = Podman(tmp_path)
    try:
        pm("pull", "-q", "--tls-verify=false", ref)
        sj.ok("image", "pull", "-q", ref)
        info = sj.inspect(ref)
        theirs = podman_layers(pm.root)
        ours = info["GraphDriver"]["Data"]["LowerDir"].split(":")[::-1]  # bottom first
        compared = 0
        for i, (diff_id, our_dir) in enumerate(zip(info["RootFS"]["Layers"], ours, strict=True)):
            a, b = layer_snapshot(our_dir), layer_snapshot(theirs[diff_id])
            root, _ = a.pop("."), b.pop(".")
            assert root["mode"] == "0o755" and root["owner"] == (0, 0)
            if i == 2:
                # the one deliberate difference, in both its forms
                ours_entry = a.pop("usr/bin/" + os.path.basename(DIRLINK_ENTRY))
                theirs_entry = b.pop(DIRLINK_ENTRY)
                assert ours_entry == theirs_entry
                assert b.pop("bin")["type"] == "d"  # podman's new directory
                # the implied usr and usr/bin of ours: directories like layer 1's
                for d in ("usr", "usr/bin"):
                    assert a.pop(d)["type"] == "d"
            assert a == b, f"layer {i + 1} ({diff_id}) differs:\n{diff(a, b)}"
            compared += len(a)
        assert compared > 6000  # every entry of the three layers
    finally:
        pm.close()
