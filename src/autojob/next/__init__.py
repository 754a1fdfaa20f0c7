"""The next steps of tasks: restarts, resubmissions, and advancing workflows.

``create_task_group_tree`` and ``create_task_tree`` are imported from here, as
in the reference implementation; they are written by :mod:`autojob.store.write`.
"""

from autojob.store.write import (
    carry_over_files,
    create_task_group_tree,
    create_task_tree,
)

__all__ = ["carry_over_files", "create_task_group_tree", "create_task_tree"]
