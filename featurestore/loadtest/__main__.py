"""python -m featurestore.loadtest --help"""

import sys

from featurestore.loadtest.cli import main

if __name__ == "__main__":
    sys.exit(main())
