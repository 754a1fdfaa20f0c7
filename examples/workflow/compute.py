"""Square the task's ``x`` (a small real computation): outputs.json {"value": x * x}."""

import json
from pathlib import Path

inputs = json.loads(Path("inputs.json").read_text())["task_inputs"]
x = inputs["x"]
Path("outputs.json").write_text(json.dumps({"value": x * x}))
