#!/usr/bin/env bash
# The README's pip path, checked end to end: a fresh virtual environment over Debian's
# interpreter (--system-site-packages: numpy and pybind11 come from Debian), an offline
# `pip install --no-build-isolation .`, then `import odma` from outside the source tree and the
# BlockManager's 1,000-request decode loop against the installed copy.
#
# usage: pip_install_check.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src="$1" work="$2"
python=/usr/bin/python3
rm -rf "$work"
mkdir -p "$work"
"$python" -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install --no-build-isolation --no-index --quiet "$src"
# pip builds in the source tree; leave nothing behind there but what git ignores anyway.
rm -rf "$src/python/odma.egg-info"
cd "$work"
"$work/venv/bin/python" -c "import odma, os, sys; print('imported', odma.__file__); sys.exit(not os.path.realpath(odma.__file__).startswith(os.path.realpath('$work/venv')))"
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider \
    "$src/python/tests/test_block_manager.py::test_thousand_request_decode_loop"
