"""Double the value of the sweep task this task follows: outputs.json {"doubled": 2 * value}."""

import json
from pathlib import Path

inputs = json.loads(Path("inputs.json").read_text())["task_inputs"]
Path("outputs.json").write_text(json.dumps({"doubled": 2 * inputs["value"]}))
