"""The on-disk format: atomic reads and writes, safe names, discovery, loading.

This layer imports only the models; nothing above it is imported here.
"""
