"""`python -m asr`: the `asr` command."""

import sys

from asr.cli.app import main

sys.exit(main())
