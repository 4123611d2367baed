#!/bin/sh
# Runs install.py with a Python 3 from PATH; every option is install.py's (see --help and docs/install.md).
here=$(cd "$(dirname "$0")" && pwd)
# The engine needs Python 3.10+; install.py itself runs on 3.8+ (enough for --python, --check, --uninstall).
for minimum in 10 8; do
    for py in python3 python3.13 python3.12 python3.11 python3.10 python; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c "import sys; sys.exit(sys.version_info < (3, $minimum))" 2>/dev/null; then
            exec "$py" "$here/install.py" "$@"
        fi
    done
done
echo "install.sh: no Python 3 found; install Python 3.10 or newer (python.org or your package manager), then run this again" >&2
exit 1
