"""The on-disk format: every file autojob reads or writes beside the tasks.

- :mod:`~autojob.store.atomic`: atomic writes (:class:`~autojob.store.atomic.AtomicFile`),
  careful JSON reads, locked read-modify-write of shared metadata.
- :mod:`~autojob.store.names`: directory names from templates, refused when unsafe.
- :mod:`~autojob.store.write` and :mod:`~autojob.store.load`: write and read trees.
- :mod:`~autojob.store.render`: task scripts and dataset job scripts from templates.
- :mod:`~autojob.store.walk`: what a task directory is; walking a tree of them.
- :mod:`~autojob.store.discovery`: tasks in any tree, with missing metadata created.
- :mod:`~autojob.store.state`: a task's state, derived from its run files.
- :mod:`~autojob.store.run_files`: the records of a run, and the history of runs.
- :mod:`~autojob.store.task_lock`: the lock of one task directory.
- :mod:`~autojob.store.status_index` and :mod:`~autojob.store.journal`: the
  status index of a tree and the journals that keep it current.
- :mod:`~autojob.store.completed_tasks`: a study's ``record.txt``, and
  :mod:`~autojob.store.record_index` the index a large one is asked through.
- :mod:`~autojob.store.workflow`: a study's workflow files.

This layer imports only the models; the models' seed methods (``from_directory``,
``to_directory``, ``write_inputs``) call into it (``tests/test_layers.py``).
"""
