"""`python -m t2t ...`: the `t2t` command."""

import sys

from t2t.cli.main import main

sys.exit(main())
