"""`python -m benchmarks`: the benchmark's JSON report on stdout (flags: `--help`)."""

from .run import main

raise SystemExit(main())
