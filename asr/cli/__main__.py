"""`python -m asr.cli`: the `asr` command."""

import sys

from asr.cli.app import main

sys.exit(main())
