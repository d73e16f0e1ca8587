"""``gradparity bench``: what it measures (``measure``: the plan, the cheap-gradient ratio and the
scaling in T; ``runners``: each backend's loss and loss-with-gradient callables, as the
backend prepares them; ``memory``: stored and peak memory; ``costs``: per-operation
overhead and the cost of checking) and how it renders (``markdown``: bench.md). ``threads``
gives every backend the same thread count."""
