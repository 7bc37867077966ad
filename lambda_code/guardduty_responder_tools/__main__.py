"""`python -m guardduty_responder_tools`: the same command line as `guardduty-responder`."""

from .cli import main

raise SystemExit(main())
