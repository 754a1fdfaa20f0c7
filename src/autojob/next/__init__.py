"""Create trees of tasks and move workflows forward.

``create_task_group_tree`` and ``create_task_tree`` live here, as in the
reference implementation.
"""

from autojob.next.tree import (
    carry_over_files,
    create_task_group_tree,
    create_task_tree,
)

__all__ = ["carry_over_files", "create_task_group_tree", "create_task_tree"]
