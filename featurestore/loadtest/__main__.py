"""python -m featurestore.loadtest --help"""

import sys

from featurestore.loadtest.cli import main

sys.exit(main())
