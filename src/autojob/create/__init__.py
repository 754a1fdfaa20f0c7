"""Create tasks and trees: new tasks and groups, clones, sweeps, listings.

- :mod:`autojob.create.new`: a new task, task group, study or study group, or a clone.
- :mod:`autojob.create.assignments`: ``--set KEY=VALUE`` changes of a task's inputs.
- :mod:`autojob.create.sweep`: sweep specifications and the studies they describe.
- :mod:`autojob.create.listing`: the tasks of a tree, with missing metadata created.

The trees themselves are written by :mod:`autojob.store.write`.
"""
