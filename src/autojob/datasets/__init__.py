"""The jobarchitect side: batches of dtool dataset items, job sketches and the agent.

- :mod:`autojob.datasets.batches`: open datasets, choose items, split them.
- :mod:`autojob.datasets.sketch`: render job scripts; write a sketch as a study.
- :mod:`autojob.datasets.agent`: run a smart (or CWL) tool per item, with provenance.
"""
