"""The ``autojob`` command line: parse, call the library, print."""
