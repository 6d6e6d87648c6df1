#!/bin/bash
# Download, into .whl/ at the repository root (ignored by git), the wheels that recplan needs and a GPU
# machine's image may lack or hold in another version (simpy, pydantic and its core, typer and its
# command-line stack), for CPython 3.12 on x86-64 Linux. Run it where pip reaches the package index, before
# a session on a machine that cannot; calibration/device-session.sh installs them from there. The versions
# are the ones the tests run with here (`pip list` in this project's virtual environment). A failed download
# leaves any earlier .whl/ as it was.
set -euo pipefail
cd "$(dirname "$0")/.."
fresh=$(mktemp -d .whl.XXXXXX)
trap 'rm -rf "$fresh"' EXIT
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$fresh" \
    simpy==4.1.2 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
    typing_extensions==4.16.0 typer==0.29.2 annotated-doc==0.0.7 click==8.5.1 shellingham==1.5.4 \
    rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2 pygments==2.21.0
rm -rf .whl
mv "$fresh" .whl
trap - EXIT
du -sh .whl
