#!/usr/bin/env bash
# One-time setup: a virtualenv at bench/thingsboard/.venv with thingsboard-gateway
# and the Modbus libraries it would otherwise pip-install at first start, plus
# the bit-fix uplink converter (riser_bits_converter.py) in its extensions folder.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-python3}"
TB_VERSION="${TB_VERSION:-3.8.5}"
[ -x "$HERE/.venv/bin/python" ] || "$PY" -m venv "$HERE/.venv"
"$HERE/.venv/bin/pip" install -q "thingsboard-gateway==$TB_VERSION"
# The Modbus connector demands exactly this pymodbus and installs it (pip,
# at import time) when missing; do it here so a run never touches the network.
PYMODBUS="$("$HERE/.venv/bin/python" - <<'PYEOF'
import re, importlib.util
spec = importlib.util.find_spec("thingsboard_gateway")
src = open(spec.submodule_search_locations[0] + "/connectors/modbus/modbus_connector.py").read()
print(re.search(r"required_version = '([^']+)'", src).group(1))
PYEOF
)"
"$HERE/.venv/bin/pip" install -q "pymodbus==$PYMODBUS" pyserial pyserial-asyncio
EXT="$("$HERE/.venv/bin/python" -c 'import thingsboard_gateway, os; print(os.path.join(os.path.dirname(thingsboard_gateway.__file__), "extensions", "modbus"))')"
mkdir -p "$EXT"
cp "$HERE/riser_bits_converter.py" "$EXT/"
"$HERE/.venv/bin/pip" freeze > "$HERE/requirements.lock"
echo "thingsboard-gateway $TB_VERSION, pymodbus $PYMODBUS; converter in $EXT"
