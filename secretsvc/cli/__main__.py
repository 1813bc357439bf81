import sys

from secretsvc.cli import main

sys.exit(main())
