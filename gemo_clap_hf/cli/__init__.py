"""The `gemo-clap` command line: argument parsing, printing and exit codes on top of the library.

`main.py` builds the parser and catches every `GEmoClapError` once; each sub-command's options and handler live in
their own module. Nothing in the library imports this package.
"""
