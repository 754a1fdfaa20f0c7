"""Add up the values of every sweep task: outputs.json {"total": ..., "count": ...}."""

import json
from pathlib import Path

inputs = json.loads(Path("inputs.json").read_text())["task_inputs"]
values = inputs["values"]
Path("outputs.json").write_text(json.dumps({"total": sum(values), "count": len(values)}))
