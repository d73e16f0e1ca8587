"""``gradparity bench``: what it measures (``run``: the plan, the cheap-gradient ratio and the
scaling in T; ``runners``: the loss and loss-with-gradient callables per backend;
``memory``: stored and peak memory; ``costs``: per-operation overhead and the cost of
checking) and how it renders (``render``: bench.md). ``threads`` gives every backend the
same thread count."""
