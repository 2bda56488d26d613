#!/usr/bin/env bash
# Installs what the test suite needs into .venv (system packages too) and runs lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
# the multi-host tests: an OpenSSH server per network namespace, made with ip
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ip >/dev/null || need+=(iproute2)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update && apt-get install -y --no-install-recommends "${need[@]}"
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"; ruff check . && ruff format --check .
echo "== mypy"; mypy
echo "== pytest"; python -m pytest -q -p no:cacheprovider "$@"
