#!/usr/bin/env bash
# Prepares .gpu/ in this checkout for a GPU machine that has Python, torch and the other packages
# listed in docs/gpu.md but no pydantic, no codecarbon and no network: .gpu/whl/ holds the wheels
# it lacks (benchmarks/gpu_wheels.txt), .gpu/data/MNIST/raw/ MNIST gzipped (dlrepro unpacks it
# there, then checks the MD5s). The folder ignores itself (its own .gitignore), so the device tool
# takes it only as `carry`. Prints the size of all that is sent, which must stay under 64 MiB.
#
#     benchmarks/gpu_bundle.sh [--python-version 3.12]   # the GPU machine's Python (default)
set -euo pipefail
cd "$(dirname "$0")/.."

python_version=3.12
if [ $# -gt 0 ]; then
    if [ "$1" != --python-version ] || [ $# -ne 2 ]; then
        echo "gpu_bundle.sh: unknown arguments '$*' (takes only --python-version X.Y)" >&2
        exit 2
    fi
    python_version=$2
fi
data=${DLREPRO_DATA_DIR:-$(cd .. && pwd)/shared/data}
if [ ! -f "$data/MNIST/raw/train-images-idx3-ubyte" ]; then
    echo "gpu_bundle.sh: no MNIST under \$DLREPRO_DATA_DIR ($data/MNIST/raw)" >&2
    exit 2
fi

bundle=.gpu
limit_mib=64
mkdir -p "$bundle/data/MNIST/raw"
echo '*' > "$bundle/.gitignore"
rm -rf "$bundle/whl"
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version "$python_version" --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$bundle/whl" \
    -r benchmarks/gpu_wheels.txt

rm -f "$bundle"/data/MNIST/raw/*-ubyte  # unpacked by a run here: 52 MiB that need not travel
for raw in "$data"/MNIST/raw/*-ubyte; do
    gz="$bundle/data/MNIST/raw/$(basename "$raw").gz"
    [ "$gz" -nt "$raw" ] || gzip -9 -c "$raw" > "$gz"
done

sent=$( (git ls-files -z --cached --others --exclude-standard; find "$bundle" -type f -print0) \
    | xargs -0 du -cb | tail -1 | cut -f1)
mib=$(( (sent + 1048575) / 1048576 ))
echo "gpu_bundle.sh: $bundle holds $(ls "$bundle/whl" | wc -l) wheels for Python $python_version" \
    "($(du -sh "$bundle/whl" | cut -f1)) and MNIST gzipped ($(du -sh "$bundle/data" | cut -f1));" \
    "with the checkout, $mib MiB to send (limit $limit_mib MiB)"
if [ "$mib" -gt "$limit_mib" ]; then
    echo "gpu_bundle.sh: over the limit of $limit_mib MiB" >&2
    exit 1
fi
